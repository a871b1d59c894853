/* Test fixture for Wine only, never shipped: Debian 12's Wine 8 has no
 * bcryptprimitives.dll, whose ProcessPrng Rust's standard library imports for random
 * numbers on Windows. This DLL exports it over RtlGenRandom (SystemFunction036), which
 * Wine has. Built by scripts/windows-test.sh with x86_64-w64-mingw32-gcc. */
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    while (length > 0) {
        ULONG n = length > 0x40000000 ? 0x40000000 : (ULONG)length;
        if (!SystemFunction036(data, n))
            return FALSE;
        data += n;
        length -= n;
    }
    return TRUE;
}
