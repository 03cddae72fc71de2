/* Semihosting exit and printf-free number formatting (float printf would cost ~30 KB of flash). */
#include "le_firmware.h"

#define LE_SYS_EXIT_EXTENDED 0x20u
#define LE_ADP_STOPPED_APPLICATION_EXIT 0x20026u

/* "bkpt 0xab" traps to the debugger or emulator, which reads r0 and r1. */
uint32_t le_semihosting_call(uint32_t operation, const void *parameter)
{
    register uint32_t r0 __asm("r0") = operation;
    register const void *r1 __asm("r1") = parameter;
    __asm volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void le_exit(int code)
{
    /* Plain SYS_EXIT only reports success or failure on M-profile; the extended call carries the code. */
    const uint32_t block[2] = {LE_ADP_STOPPED_APPLICATION_EXIT, (uint32_t)code};
    le_semihosting_call(LE_SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}

char *le_format_hex32(char *dst, uint32_t value)
{
    static const char digits[] = "0123456789abcdef";
    int shift;
    for (shift = 28; shift >= 0; shift -= 4) {
        *dst++ = digits[(value >> shift) & 0xfu];
    }
    return dst;
}

char *le_format_u32(char *dst, uint32_t value)
{
    char reversed[10];
    int count = 0;
    do {
        reversed[count++] = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    while (count > 0) {
        *dst++ = reversed[--count];
    }
    return dst;
}
