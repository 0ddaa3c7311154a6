#include "scenario.h"

#include "lib.h"

int scenario_parse(const uint8_t *w, uint32_t window_size, struct scenario *s)
{
	if (memcmp(w, SCENARIO_MAGIC, 8) != 0)
		return -1;
	s->ffa_version = le32(w + 8);
	s->count = le32(w + 12);
	s->fpi_size = le32(w + 16);
	s->data_len = le32(w + 20);
	s->n_supported = le32(w + 24);
	if (s->data_len > SCENARIO_MAX_DATA || s->n_supported > SCENARIO_MAX_SUPPORTED)
		return -1;
	if (SCENARIO_HEADER_SIZE + 4 * s->n_supported + s->data_len > window_size)
		return -1;
	s->supported = w + SCENARIO_HEADER_SIZE;
	s->data = s->supported + 4 * s->n_supported;
	return 0;
}
