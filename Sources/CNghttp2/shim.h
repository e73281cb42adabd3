#ifndef GATEHOUSE_CNGHTTP2_H
#define GATEHOUSE_CNGHTTP2_H
#include <nghttp2/nghttp2.h>
#endif
