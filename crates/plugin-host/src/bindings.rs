//! Host bindings generated from `plugin-sdk/wit` (the contract files, not the SDK crate).

wasmtime::component::bindgen!({
    path: "../../plugin-sdk/wit",
    world: "plugin",
    // verbs run as futures (so WASI waits can be raced against the limits); our own
    // imports stay synchronous and check the call's budget themselves
    exports: { default: async },
    with: {
        "rehydra:plugin/engine.stream-writer": crate::state::StreamWriter,
    },
});

pub(crate) use rehydra::plugin::types as wit;
