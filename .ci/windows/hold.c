/* hold.exe FILE SECONDS: keep FILE open the way Excel keeps a workbook it shows, readable by
 * others but not to be replaced or deleted, for SECONDS. For .ci/windows.sh, which checks that
 * a report tlscensus cannot put in place is an error naming it, with no temporary file left. */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    HANDLE h = CreateFileA(argv[1], GENERIC_READ, FILE_SHARE_READ, NULL, OPEN_EXISTING, 0, NULL);
    if (h == INVALID_HANDLE_VALUE) return 1;
    printf("holding %s\n", argv[1]);
    fflush(stdout);
    Sleep(atoi(argv[2]) * 1000);
    CloseHandle(h);
    return 0;
}
