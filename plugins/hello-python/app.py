"""A minimal Rehydra plugin in Python: proof that the contract is language-neutral.

Built with componentize-py against plugin-sdk/wit (see `cargo xtask plugins`). It answers
`describe`, and `discover` lists the sub-folders of the `root` setting through the host's
`files` capability (so it is denied until the admin grants `files:<root>`).
"""

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import files, host, types


def _error(code, message):
    return Err(types.Error(code=code, message=message))


class Workload(exports.Workload):
    def describe(self):
        return types.PluginInfo(
            id="hello-python",
            name="Hello from Python",
            version="0.1.0",
            workloads=["files"],
            description="Lists folders; written in Python with componentize-py",
        )

    def discover(self, settings):
        root = next((p.value for p in settings if p.name == "root"), None)
        if root is None:
            raise _error(types.ErrorCode.INVALID_INPUT, "setting `root` (a folder) is required")
        host.log(host.Level.INFO, f"listing {root}")
        assets = []
        for entry in files.list_dir(root):
            if entry.kind == files.EntryKind.DIRECTORY:
                path = root.rstrip("/") + "/" + entry.name
                assets.append(types.Asset(kind="folder", id=path, name=entry.name, parent=root, properties=[], flags=types.ProtectionFlags(0)))
        return assets

    def assess(self, assets, settings):
        return []

    def backup(self, req):
        raise _error(types.ErrorCode.UNSUPPORTED, "hello-python does not back up")

    def plan_restore(self, req):
        raise _error(types.ErrorCode.UNSUPPORTED, "hello-python does not restore")

    def restore(self, req):
        raise _error(types.ErrorCode.UNSUPPORTED, "hello-python does not restore")

    def verify(self, req):
        raise _error(types.ErrorCode.UNSUPPORTED, "hello-python does not verify")
