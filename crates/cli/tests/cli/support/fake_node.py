#!/usr/bin/env python3
"""A stand-in Hyper-V / Azure Local node for the VM workload tests.

Installed as `pwsh` on PATH, it receives the plugin's script as
`pwsh -NoProfile -NonInteractive -Command <script>` (or, reached over SSH, with
`-EncodedCommand`), recognises which of the plugins'
scripts it is, answers in the JSON shape the real cmdlets' output takes (ConvertTo-Json),
keeps the node's state (VMs, MOC keys) in state.json next to itself, and appends one
line per script to calls.log there, so tests can check what ran and in which order (the
host clears the environment of commands, so the folder is the only channel).

No real node exists here (no Windows, no Hyper-V, no MOC); the shapes follow the cmdlets'
documented output, see tests/fixtures/hyperv/README.md.
"""
import base64, json, os, re, sys, uuid

script = sys.argv[4] if len(sys.argv) > 4 else ""
if len(sys.argv) > 4 and sys.argv[3] == "-EncodedCommand":
    # reached over SSH: the script travels as base64 of UTF-16LE
    script = base64.b64decode(script).decode("utf-16-le")
here = os.path.dirname(os.path.abspath(sys.argv[0]))
state_path = os.path.join(here, "state.json")
with open(state_path) as f:
    st = json.load(f)


def save():
    tmp = state_path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(st, f, indent=1)
    os.replace(tmp, state_path)


def log(line):
    with open(os.path.join(here, "calls.log"), "a") as f:
        f.write(line + "\n")


def fail(msg, code=1):
    sys.stderr.write(msg + "\n")
    sys.exit(code)


def quoted(after):
    """The first single-quoted PowerShell literal after `after`."""
    m = re.search(re.escape(after) + r"\s*'((?:[^']|'')*)'", script)
    return m.group(1).replace("''", "'") if m else None


def vm_by_id(i):
    return next((v for v in st["vms"] if v["Id"].lower() == (i or "").lower()), None)


def vm_by_name(n):
    return [v for v in st["vms"] if v["Name"].lower() == (n or "").lower()]


def win_to_local(p):
    for prefix, local in st.get("paths", {}).items():
        if p.lower().startswith(prefix.lower()):
            return local + p[len(prefix):].replace("\\", "/")
    return None


out = None
if "Get-ClusterGroup" in script and "Get-VM | ForEach-Object" in script:
    log("inventory")
    out = [
        {k: v for k, v in vm.items() if k not in ("Config",)}
        for vm in st["vms"]
    ]
elif "Checkpoint-VM" in script and "ProductionOnly" in script:
    vm = vm_by_id(quoted("Get-VM -Id"))
    if vm is None:
        fail("Get-VM : Hyper-V was unable to find a virtual machine with id.")
    log("checkpoint " + vm["Name"])
    out = {
        "Checkpoint": str(uuid.uuid4()).upper(),
        "Disks": vm["HardDrives"],
        "Config": {
            "Name": vm["Name"], "Id": vm["Id"], "Generation": vm["Generation"],
            "ProcessorCount": vm["ProcessorCount"], "MemoryStartup": vm["MemoryStartup"],
            "Path": vm["Path"], "Version": "12.0", "TpmEnabled": vm["TpmEnabled"],
            "SecureBoot": True, "NetworkAdapters": vm["NetworkAdapters"],
        },
    }
elif "Remove-VMSnapshot" in script:
    log("remove-checkpoint")
elif "GetVirtualDiskChanges" in script:
    path = quoted("$path =")
    log("rct-changes " + path)
    if st.get("rct_fail"):
        fail("Invoke-CimMethod : The method call failed. (GetVirtualDiskChanges returned 32768)")
    c = st.get("rct", {}).get(path)
    if c is None:
        fail("Invoke-CimMethod : The change tracking identifier is not valid")
    out = c
elif "ConvertToReferencePoint" in script:
    vm = vm_by_id(re.search(r"Name = '([^']*)'", script).group(1))
    rp = "Microsoft:" + str(uuid.uuid4()).upper()
    log("reference-point " + vm["Name"])
    st.setdefault("reference_points", []).append(rp)
    save()
    out = {"ReferencePoint": rp, "RctIds": ["rctid:%s:%d" % (rp, i) for i in range(len(vm["HardDrives"]))]}
elif "Get-VMSwitch" in script:
    name = quoted("Get-VM -Name")
    log("probe " + name)
    out = {
        "Existing": [{"Id": v["Id"], "State": v["State"]} for v in vm_by_name(name)],
        "Switches": st.get("switches", []),
    }
elif "Remove-VM -Force" in script:
    name = quoted("Get-VM -Name")
    log("remove-vm " + name)
    st["vms"] = [v for v in st["vms"] if v["Name"].lower() != name.lower()]
    save()
elif "New-VM" in script:
    name = quoted("New-VM -Name")
    log("new-vm " + name)
    log("script " + json.dumps(script))
    new_id = str(uuid.uuid4())
    folder = quoted("-Path")
    st["vms"].append({
        "Name": name, "Id": new_id, "State": "Off", "Generation": 2,
        "ProcessorCount": 1, "MemoryStartup": 0, "ComputerName": "HV01", "OwnerNode": None,
        "IsClustered": False, "Path": folder + "\\" + name,
        "ConfigurationLocation": folder + "\\" + name,
        "HardDrives": [{"Path": p.replace("''", "'"), "ControllerType": 1, "ControllerNumber": 0, "ControllerLocation": 0}
                       for p in re.findall(r"Add-VMHardDiskDrive .* -Path '((?:[^']|'')*)'", script)],
        "NetworkAdapters": [{"Name": n} for n in re.findall(r"Add-VMNetworkAdapter -VM \$vm -Name '([^']*)'", script)],
        "Checkpoints": 0,
        "TpmEnabled": "Enable-VMTPM" in script,
    })
    save()
    out = {"Id": new_id}
elif "Start-VM" in script:
    vm = vm_by_id(quoted("Get-VM -Id"))
    if vm is None:
        fail("Start-VM : no such VM")
    log("start " + vm["Id"])
    vm["State"] = "Running"
    save()
elif "Mount-VHD" in script:
    name = quoted("Get-VM -Name")
    log("inspect " + name)
    vms = vm_by_name(name)
    if not vms:
        out = {"Exists": False}
    else:
        vm = vms[0]
        out = {
            "Exists": True, "State": vm["State"],
            "Disks": [d["Path"] for d in vm["HardDrives"]],
            "Nics": len(vm["NetworkAdapters"]),
            "Agent": st.get("agent_in_guest"),
            "VolumesChecked": 1 if vm["State"] == "Off" else 0,
        }
elif "Export-MocKey" in script:
    vm = vm_by_id(quoted("Get-VM -Id"))
    if vm is None:
        fail("Get-VM : Hyper-V was unable to find a virtual machine with id.")
    wrap = quoted("New-MocKey -name")
    if wrap not in st["keys"]:
        log("new-wrapping-key " + wrap)
        st["keys"].append(wrap)
        save()
    log("export-key " + vm["Id"])
    enc = "NO_KEY_WRAP" if st.get("export_clear") else "CKM_RSA_AES_KEY_WRAP"
    # MOC's KeyImportExportValue (see ../shared/fixtures/trusted-launch), base64url with padding
    export = {
        "version": "1",
        "public-key": "",
        "private-key": "c2VhbGVkLWdzcC1rZXktZm9yLQ==" + vm["Id"],
        "private-key-wrapping-info": {"key-name": "" if enc == "NO_KEY_WRAP" else wrap,
                                      "public-key": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0=", "enc": enc},
    }
    out = {
        "VmId": vm["Id"], "VmName": vm["Name"], "ConfigurationLocation": vm.get("ConfigurationLocation", vm["Path"]),
        "WrappingPublicKey": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkq\n-----END PUBLIC KEY-----\n",
        "Export": json.dumps(export),
    }
elif "WrapExists" in script:
    i = quoted("Get-VM -Id")
    vm = vm_by_id(i)
    log("key-probe " + i)
    out = {
        "Exists": vm is not None, "State": vm["State"] if vm else "",
        "ConfigurationLocation": vm.get("ConfigurationLocation", vm["Path"]) if vm else "",
        "KeyExists": i.lower() in [k.lower() for k in st["keys"]],
        "WrapExists": re.findall(r"Get-MocKey -name '((?:[^']|'')*)'", script)[1] in st["keys"],
    }
elif "Remove-MocKey" in script:
    i = quoted("Remove-MocKey -name")
    log("remove-key " + i)
    st["keys"] = [k for k in st["keys"] if k.lower() != i.lower()]
    save()
elif "Import-MocKey" in script:
    i = quoted("Import-MocKey -name")
    body = quoted("Set-Content -Path $f -Value")
    if st.get("fail_import"):
        log("import-failed " + i)
        fail("Import-MocKey : Unwrap of the key failed: the wrapping key does not match")
    imported = json.loads(body)
    if imported["private-key-wrapping-info"]["enc"] != "CKM_RSA_AES_KEY_WRAP":
        fail("Import-MocKey : unexpected key format")
    log("import-key " + i)
    st["keys"].append(i)
    save()
    print("imported")
elif "Where-Object { (Get-VMSecurity" in script:
    log("list-tvms")
    out = [{"Id": v["Id"], "Name": v["Name"], "State": v["State"], "ConfigurationLocation": v.get("ConfigurationLocation", v["Path"])}
           for v in st["vms"] if v.get("TpmEnabled")]
elif "Test-Path -LiteralPath" in script:
    paths = [p.replace("''", "'") for p in re.findall(r"'((?:[^']|'')*)'", script.split("@(", 1)[1].split(") | ForEach-Object")[0])]
    log("test-path " + str(len(paths)))
    out = []
    for p in paths:
        local = win_to_local(p)
        out.append({"Path": p, "Exists": bool(local and os.path.isdir(local))})
elif "wbadmin start systemstatebackup" in script:
    target = quoted("'-backupTarget:' +")
    log("wbadmin " + str(target))
    if st.get("wbadmin_fail"):
        fail("ERROR - " + st["wbadmin_fail"], 2)
    computer = st.get("computer", "DC01")
    local = win_to_local(target + "\\WindowsImageBackup\\" + computer)
    if local is None:
        fail("fake node: no path for " + target, 3)
    version = os.path.join(local, "Backup 2026-12-02 020000")
    os.makedirs(version, exist_ok=True)
    os.makedirs(os.path.join(local, "Catalog"), exist_ok=True)
    with open(os.path.join(version, "a1b2c3d4-system.vhdx"), "wb") as f:
        f.write(b"vhdxfile" + os.urandom(4096))
    with open(os.path.join(local, "Catalog", "GlobalCatalog"), "wb") as f:
        f.write(b"catalog")
    out = {"computer": computer}
elif script.startswith("Get-ClusterNode"):
    # the host asking a cluster target for its nodes: one name per line
    log("cluster-nodes")
    for n in (st.get("facts") or {}).get("Nodes", []):
        print(n["Name"])
elif "Get-AzureStackHCI" in script:
    # the cluster's facts (hyperv-vm's discovery); a state may set its own, or null to fail
    log("cluster-facts")
    facts = st.get("facts", {
        "Computer": "HV01", "Os": "Microsoft Azure Stack HCI", "Version": "10.0.25398", "Cluster": "hci",
        "Registration": "Registered", "Connection": "Connected",
        "Nodes": [{"Name": "HV01", "State": "Up"}],
        "Volumes": [{"Name": "Cluster Virtual Disk (Volume1)", "Path": "C:\\ClusterStorage\\Volume1",
                     "Size": 2 << 40, "Free": 1 << 40}],
        "Pools": [{"Name": "SU1_Storagepool", "Health": "Healthy", "Size": 8 << 40, "Allocated": 4 << 40}],
    })
    if facts is None:
        fail("Get-CimInstance : Access denied")
    out = facts
else:
    fail("fake node: unexpected script:\n" + script, 3)

if out is not None:
    print(json.dumps(out))
