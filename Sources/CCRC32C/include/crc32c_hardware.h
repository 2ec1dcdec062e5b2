#ifndef STATEHOUSE_CRC32C_HARDWARE_H
#define STATEHOUSE_CRC32C_HARDWARE_H

#include <stddef.h>
#include <stdint.h>

/// Whether this processor computes CRC-32C in hardware (x86-64 with SSE4.2).
int statehouse_crc32c_hardware_available(void);

/// Feeds `length` bytes into a CRC-32C state (reflected, neither pre- nor post-inverted) with
/// the processor's CRC-32C instruction, and returns the new state. Call it only when
/// `statehouse_crc32c_hardware_available()` returns nonzero.
uint32_t statehouse_crc32c_hardware_update(uint32_t state, const void *bytes, size_t length);

#endif
