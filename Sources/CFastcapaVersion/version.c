#include "fastcapa_version.h"

#include <stddef.h>

const char *_Nullable fastcapa_version_override(void) {
#ifdef FASTCAPA_VERSION
    return FASTCAPA_VERSION;
#else
    return NULL;
#endif
}
