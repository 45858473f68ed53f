/* bcryptprimitives_shim.c: ProcessPrng, for test runs under Wine 8 only.
 *
 * The Go runtime (1.22+) takes its randomness from bcryptprimitives.dll's
 * ProcessPrng and refuses to start without it; Wine 8 ships no such DLL
 * (Windows 10 and later do). scripts/windows/wine-prefix.sh builds this into
 * the test prefix's system32. Never shipped: real Windows has the real one. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len; /* BCryptGenRandom takes a ULONG */
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG))) return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
