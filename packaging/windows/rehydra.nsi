; The Windows installer of the Rehydra command line (and its first-party plugins), built
; on Linux with Debian's makensis by scripts/package.sh:
;   makensis -DVERSION=0.1.0 -DSRC=<folder with rehydra.exe and plugins\> -DOUTFILE=<setup.exe> rehydra.nsi
; Installs rehydra.exe into Program Files\Rehydra, the plugins into
; %ProgramData%\Rehydra\plugins (the system folder the CLI searches), adds the program
; folder to the end of the system PATH (unless the PATH is too long for NSIS' 1024-character
; strings: then it says so and leaves it alone), and registers an uninstaller (which
; removes them again: the PATH entry while it is still at the end; never the admin's
; catalog, logs, repositories or own plugins; a service registered with `rehydra service
; install` is stopped and removed first). The installer registers no service: that needs
; a repository and its password file, which `rehydra service install` is given. `/S` installs silently
; (`/D=C:\Path` chooses the folder). The app's updater (Tauri's) runs the installer of a
; newer version with `/P /UPDATE` (passive): that too asks nothing (it installs silently;
; the app is started again by hand).
; With -DAPP (scripts/package.sh when the desktop app is built for Windows) it also
; installs rehydra-app.exe and WebView2Loader.dll beside the CLI, with two Start menu
; shortcuts: "Rehydra" (the app on the user's own catalog) and "Rehydra (service)" (the
; app on the machine's service catalog, %ProgramData%\Rehydra\service\catalog.db, which
; only an administrator opens: the shortcut asks for elevation). The app needs the
; Microsoft Edge WebView2 runtime (part of Windows 11 and of current Windows 10); the
; installer says so when it finds none.

; a 64-bit installer for a 64-bit program (and Wine without 32-bit support runs it)
Target amd64-unicode
!include "LogicLib.nsh"
!include "WinMessages.nsh"
!include "FileFunc.nsh"

Name "Rehydra ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\Rehydra"
; an update (or a reinstall) goes where the first install went (`/D=`)
InstallDirRegKey HKLM "Software\Microsoft\Windows\CurrentVersion\Uninstall\Rehydra" "InstallLocation"
RequestExecutionLevel admin
!ifdef FAST
SetCompressor zlib
!else
SetCompressor /SOLID lzma
!endif
ShowInstDetails show

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\Rehydra"
!define ENV_KEY "SYSTEM\CurrentControlSet\Control\Session Manager\Environment"

; `/P` (passive, what the app's updater passes): no questions, as with /S
Function .onInit
  ${GetParameters} $R0
  ClearErrors
  ${GetOptions} $R0 "/P" $R1
  ${IfNot} ${Errors}
    SetSilent silent
  ${EndIf}
FunctionEnd

Section "Rehydra"
  SetShellVarContext all
  SetRegView 64
  SetOutPath "$INSTDIR"
  ; an upgrade: a running service holds rehydra.exe open, so it is stopped for the copy
  ; (its job cancelled, nothing half-written committed) and started again after
  nsExec::ExecToLog '"$SYSDIR\net.exe" stop Rehydra'
  Pop $5
  File "${SRC}\rehydra.exe"
  File "${SRC}\README.txt"
!ifdef APP
  File "${SRC}\rehydra-app.exe"
  File "${SRC}\WebView2Loader.dll"
  CreateDirectory "$SMPROGRAMS\Rehydra"
  CreateShortCut "$SMPROGRAMS\Rehydra\Rehydra.lnk" "$INSTDIR\rehydra-app.exe"
  CreateShortCut "$SMPROGRAMS\Rehydra\Rehydra (service).lnk" "$INSTDIR\rehydra-app.exe" '--catalog "$APPDATA\Rehydra\service\catalog.db"'
  ; that one asks for elevation when started (the "run as administrator" bit of the
  ; shortcut's link flags, byte 0x15): only administrators open the service's catalog
  FileOpen $7 "$SMPROGRAMS\Rehydra\Rehydra (service).lnk" a
  FileSeek $7 0x15 SET
  FileReadByte $7 $8
  IntOp $8 $8 | 0x20
  FileSeek $7 0x15 SET
  FileWriteByte $7 $8
  FileClose $7
  ; the Evergreen WebView2 runtime registers its version here (per machine, or per user)
  ClearErrors
  ReadRegStr $6 HKLM "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" "pv"
  ${If} ${Errors}
  ${OrIf} $6 == ""
  ${OrIf} $6 == "0.0.0.0"
    ClearErrors
    ReadRegStr $6 HKCU "Software\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" "pv"
  ${EndIf}
  ${If} ${Errors}
  ${OrIf} $6 == ""
  ${OrIf} $6 == "0.0.0.0"
    DetailPrint "warning: no Microsoft Edge WebView2 runtime found: the desktop app needs it (https://developer.microsoft.com/microsoft-edge/webview2/); the command line does not"
    MessageBox MB_ICONEXCLAMATION "The Rehydra desktop app needs the Microsoft Edge WebView2 runtime, which is not installed: get it from https://developer.microsoft.com/microsoft-edge/webview2/ (the command line works without it)." /SD IDOK
  ${EndIf}
!else
  ; an installer without the app over one with it: the old app would not match the new CLI
  Delete "$INSTDIR\rehydra-app.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$SMPROGRAMS\Rehydra\Rehydra.lnk"
  Delete "$SMPROGRAMS\Rehydra\Rehydra (service).lnk"
  RMDir "$SMPROGRAMS\Rehydra"
!endif
  SetOutPath "$APPDATA\Rehydra\plugins"
  File "${SRC}\plugins\*.wasm"
  ${If} $5 == 0
    nsExec::ExecToLog '"$SYSDIR\net.exe" start Rehydra'
    Pop $5
  ${EndIf}
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "Rehydra"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "Rehydra"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
  ; only administrators may change what the CLI loads from the system plugin folder
  ; (ProgramData lets users create files); Users keep read access
  ; (owned by Administrators and every entry anyone added removed first: a user may have
  ; made the folder before the installer ran)
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$APPDATA\Rehydra" /setowner *S-1-5-32-544 /T /Q'
  Pop $3
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$APPDATA\Rehydra" /reset /T /Q'
  Pop $3
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$APPDATA\Rehydra" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F *S-1-5-32-545:(OI)(CI)RX'
  Pop $3
  ${If} $3 != 0
    DetailPrint "warning: the access rights of $APPDATA\Rehydra were not set (icacls: $3)"
  ${EndIf}
  ; the service's folder (its catalog holds webhook tokens, and what it says runs as
  ; LocalSystem): SYSTEM and Administrators only, from the start, so a catalog the app
  ; makes there before `rehydra service install` is not readable by users either
  CreateDirectory "$APPDATA\Rehydra\service"
  nsExec::ExecToLog '"$SYSDIR\icacls.exe" "$APPDATA\Rehydra\service" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F /T /Q'
  Pop $3
  ${If} $3 != 0
    DetailPrint "warning: the access rights of $APPDATA\Rehydra\service were not set (icacls: $3)"
  ${EndIf}
  ; the program folder at the end of the system PATH, once. NSIS strings hold 1024
  ; characters: a PATH that long (or one that cannot be read) is never rewritten, since
  ; writing it back would cut it short; the installer says so and leaves PATH alone.
  ClearErrors
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  ${If} ${Errors}
  ${OrIf} $0 == ""
    DetailPrint "the system PATH could not be read: $INSTDIR was not added to it"
    WriteRegDWORD HKLM "${UNINST_KEY}" "PathAdded" 0
  ${Else}
    StrLen $1 "$0;$INSTDIR"
    ${If} $1 >= 1000
      DetailPrint "the system PATH is too long for this installer to rewrite safely: add $INSTDIR to it yourself"
      WriteRegDWORD HKLM "${UNINST_KEY}" "PathAdded" 0
    ${Else}
      Push "$0;"
      Push "$INSTDIR;"
      Call StrContains
      Pop $2
      ${If} $2 == ""
        WriteRegExpandStr HKLM "${ENV_KEY}" "Path" "$0;$INSTDIR"
        WriteRegDWORD HKLM "${UNINST_KEY}" "PathAdded" 1
        SendMessage ${HWND_BROADCAST} ${WM_WININICHANGE} 0 "STR:Environment" /TIMEOUT=5000
      ${EndIf}
    ${EndIf}
  ${EndIf}
SectionEnd

Section "Uninstall"
  SetShellVarContext all
  SetRegView 64
  ; the service, if `rehydra service install` registered one: stopped (its job cancelled)
  ; and removed first, with its Event Log source; if that fails nothing is removed, so no
  ; registered service is left pointing at a deleted program
  ${If} ${FileExists} "$INSTDIR\rehydra.exe"
    nsExec::ExecToLog '"$INSTDIR\rehydra.exe" service uninstall'
    Pop $0
    ${If} $0 != 0
      Abort "the Rehydra service could not be stopped and removed ($0): run $\"rehydra service uninstall$\" as an administrator, then uninstall again"
    ${EndIf}
  ${Else}
    DetailPrint "rehydra.exe is gone: a registered service Rehydra stays (sc delete Rehydra removes it)"
  ${EndIf}
  Delete "$INSTDIR\rehydra.exe"
  Delete "$INSTDIR\README.txt"
  Delete "$INSTDIR\rehydra-app.exe"
  Delete "$INSTDIR\WebView2Loader.dll"
  Delete "$SMPROGRAMS\Rehydra\Rehydra.lnk"
  Delete "$SMPROGRAMS\Rehydra\Rehydra (service).lnk"
  RMDir "$SMPROGRAMS\Rehydra"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  ; only the plugins this installer put there; ones the admin added stay
  !include "${SRC}\uninstall-plugins.nsh"
  RMDir "$APPDATA\Rehydra\plugins"
  ; the service's folder only when empty (a catalog there is the admin's)
  RMDir "$APPDATA\Rehydra\service"
  RMDir "$APPDATA\Rehydra"
  ; our PATH entry, only if this installer added it and it is still at the end (where it
  ; was put); a PATH that cannot be read whole is never rewritten
  ReadRegDWORD $4 HKLM "${UNINST_KEY}" "PathAdded"
  DeleteRegKey HKLM "${UNINST_KEY}"
  ${If} $4 == 1
    ClearErrors
    ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
    StrLen $5 $0
    ${IfNot} ${Errors}
    ${AndIf} $5 < 1000
      StrLen $1 ";$INSTDIR"
      StrCpy $2 $0 "" -$1
      ${If} $2 == ";$INSTDIR"
        IntOp $3 $5 - $1
        StrCpy $0 $0 $3
        WriteRegExpandStr HKLM "${ENV_KEY}" "Path" $0
        SendMessage ${HWND_BROADCAST} ${WM_WININICHANGE} 0 "STR:Environment" /TIMEOUT=5000
      ${Else}
        DetailPrint "$INSTDIR is no longer at the end of the system PATH: remove it yourself"
      ${EndIf}
    ${EndIf}
  ${EndIf}
  ; the catalog, logs and repositories are the admin's: never removed
SectionEnd

; StrContains: push haystack, push needle; pops "" when absent, else the needle
Function StrContains
  Exch $R1 ; needle
  Exch
  Exch $R2 ; haystack
  Push $R3
  Push $R4
  Push $R5
  StrLen $R3 $R1
  StrCpy $R4 0
  loop:
    StrCpy $R5 $R2 $R3 $R4
    StrCmp $R5 $R1 found
    StrCmp $R5 "" notfound
    IntOp $R4 $R4 + 1
    Goto loop
  found:
    StrCpy $R1 $R1
    Goto done
  notfound:
    StrCpy $R1 ""
  done:
  Pop $R5
  Pop $R4
  Pop $R3
  Pop $R2
  Exch $R1
FunctionEnd
