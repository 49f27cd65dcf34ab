// C API: the GGUF schema (gguf/schema.h) as JSON.
#include "depth_anything.h"
#include "gguf/schema.h"

const char *da3_gguf_schema_json(void) { return da3::schema::schema_json().c_str(); }
