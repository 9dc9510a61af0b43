#include "fastcapa_shared.h"
