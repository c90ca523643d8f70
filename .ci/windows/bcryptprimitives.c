/* Stand-in for bcryptprimitives.dll, which Wine 8 lacks: Rust's std (1.78 on) imports
 * ProcessPrng from it for HashMap seeds and the like. Only for running the Windows build
 * under Wine in CI; real Windows (10 and later) has the DLL and never loads this file.
 * Built by .ci/windows.sh: x86_64-w64-mingw32-gcc -shared -o bcryptprimitives.dll ... */
#include <windows.h>
#include <ntsecapi.h> /* RtlGenRandom, exported by advapi32 as SystemFunction036 */

/* Fill the buffer with random bytes, in chunks RtlGenRandom (a ULONG length) can take. */
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    for (; len > 0; ) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!RtlGenRandom(data, chunk)) return FALSE;
        data += chunk, len -= chunk;
    }
    return TRUE;
}
