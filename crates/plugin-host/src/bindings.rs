//! Host bindings generated from `plugin-sdk/wit` (the contract files, not the SDK crate).

wasmtime::component::bindgen!({
    path: "../../plugin-sdk/wit",
    world: "plugin",
    with: {
        "rehydra:plugin/engine.stream-writer": crate::state::StreamWriter,
    },
});

pub(crate) use rehydra::plugin::types as wit;
