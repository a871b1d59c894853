/* Test fixture for Wine only, never shipped: holds N connections to a named pipe open,
 * saying nothing, for S seconds, as a client that means to keep the service's operators'
 * door busy would (scripts/windows-test.sh). Prints "held N" once it holds them. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: pipe-hold PIPE N SECONDS\n");
        return 2;
    }
    int want = atoi(argv[2]), held = 0;
    for (int tries = 0; held < want && tries < 50; tries++) {
        HANDLE h = CreateFileA(argv[1], GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        if (h != INVALID_HANDLE_VALUE) {
            held++;
            continue;
        }
        if (GetLastError() != ERROR_PIPE_BUSY) {
            fprintf(stderr, "pipe-hold: %s: error %lu\n", argv[1], GetLastError());
            return 1;
        }
        WaitNamedPipeA(argv[1], 1000);
    }
    printf("held %d\n", held);
    fflush(stdout);
    Sleep((DWORD)atoi(argv[3]) * 1000);
    return held == want ? 0 : 1;
}
