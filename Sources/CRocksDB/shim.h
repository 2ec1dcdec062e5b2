#ifndef STATEHOUSE_CROCKSDB_SHIM_H
#define STATEHOUSE_CROCKSDB_SHIM_H

#include <rocksdb/c.h>

#endif
