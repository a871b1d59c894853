; The Windows installer of the Rehydra command line (and its first-party plugins), built
; on Linux with Debian's makensis by scripts/package.sh:
;   makensis -DVERSION=0.1.0 -DSRC=<folder with rehydra.exe and plugins\> -DOUTFILE=<setup.exe> rehydra.nsi
; Installs rehydra.exe into Program Files\Rehydra, the plugins into
; %ProgramData%\Rehydra\plugins (the system folder the CLI searches), adds the program
; folder to the end of the system PATH, and registers an uninstaller (which removes
; them again, and never the admin's catalog, logs or repositories). `/S` installs silently
; (`/D=C:\Path` chooses the folder).

; a 64-bit installer for a 64-bit program (and Wine without 32-bit support runs it)
Target amd64-unicode
!include "LogicLib.nsh"
!include "WinMessages.nsh"

Name "Rehydra ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$PROGRAMFILES64\Rehydra"
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

Section "Rehydra"
  SetShellVarContext all
  SetRegView 64
  SetOutPath "$INSTDIR"
  File "${SRC}\rehydra.exe"
  File "${SRC}\README.txt"
  SetOutPath "$APPDATA\Rehydra\plugins"
  File "${SRC}\plugins\*.wasm"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayName" "Rehydra"
  WriteRegStr HKLM "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKLM "${UNINST_KEY}" "Publisher" "Rehydra"
  WriteRegStr HKLM "${UNINST_KEY}" "InstallLocation" "$INSTDIR"
  WriteRegStr HKLM "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegStr HKLM "${UNINST_KEY}" "QuietUninstallString" '"$INSTDIR\uninstall.exe" /S'
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKLM "${UNINST_KEY}" "NoRepair" 1
  ; the program folder on the system PATH, once
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrCpy $1 "$0;"
  Push $1
  Push "$INSTDIR;"
  Call StrContains
  Pop $2
  ${If} $2 == ""
    ${If} $0 == ""
      WriteRegExpandStr HKLM "${ENV_KEY}" "Path" "$INSTDIR"
    ${Else}
      WriteRegExpandStr HKLM "${ENV_KEY}" "Path" "$0;$INSTDIR"
    ${EndIf}
    SendMessage ${HWND_BROADCAST} ${WM_WININICHANGE} 0 "STR:Environment" /TIMEOUT=5000
  ${EndIf}
SectionEnd

Section "Uninstall"
  SetShellVarContext all
  SetRegView 64
  Delete "$INSTDIR\rehydra.exe"
  Delete "$INSTDIR\README.txt"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  ; only the plugins this installer put there; ones the admin added stay
  !include "${SRC}\uninstall-plugins.nsh"
  RMDir "$APPDATA\Rehydra\plugins"
  RMDir "$APPDATA\Rehydra"
  DeleteRegKey HKLM "${UNINST_KEY}"
  ; our PATH entry, where the installer put it (at the end)
  ReadRegStr $0 HKLM "${ENV_KEY}" "Path"
  StrLen $1 ";$INSTDIR"
  StrCpy $2 $0 "" -$1
  ${If} $2 == ";$INSTDIR"
    StrLen $3 $0
    IntOp $3 $3 - $1
    StrCpy $0 $0 $3
    WriteRegExpandStr HKLM "${ENV_KEY}" "Path" $0
    SendMessage ${HWND_BROADCAST} ${WM_WININICHANGE} 0 "STR:Environment" /TIMEOUT=5000
  ${ElseIf} $0 == "$INSTDIR"
    DeleteRegValue HKLM "${ENV_KEY}" "Path"
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
