/* The scenario blob ("SpmcConfig") the bundle patches into the image's .scenario window.
 * Layout (little-endian u32 unless said), fixed contract with hil/ffa/spmc.py:
 *   0 magic "HILSPMC1" | 8 ffa_version | 12 count | 16 fpi_size | 20 data_len (<= 4096)
 *   24 n_supported (<= 64) | 28 reserved | 32 supported_fids[n_supported] | data[data_len]
 */
#ifndef HIL_SCENARIO_H
#define HIL_SCENARIO_H

#include <stdint.h>

#define SCENARIO_MAGIC "HILSPMC1"
#define SCENARIO_HEADER_SIZE 32u
#define SCENARIO_MAX_SUPPORTED 64u
#define SCENARIO_MAX_DATA 4096u

struct scenario {
	uint32_t ffa_version;
	uint32_t count;
	uint32_t fpi_size;
	uint32_t data_len;
	uint32_t n_supported;
	const uint8_t *supported; /* n_supported LE u32 words */
	const uint8_t *data;      /* data_len bytes */
};

/* Parse the blob in `window` (window_size bytes); returns 0, or -1 if it is malformed. */
int scenario_parse(const uint8_t *window, uint32_t window_size, struct scenario *out);

#endif
