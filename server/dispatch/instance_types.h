// File: server/dispatch/instance_types.h
//
// The dispatcher's names for the instance-type table, which lives in core/model/instance_types.h
// (shared with the backends).
#ifndef FASTEST_SERVER_DISPATCH_INSTANCE_TYPES_H_
#define FASTEST_SERVER_DISPATCH_INSTANCE_TYPES_H_

#include "core/model/instance_types.h"

namespace fastest::server {

using core::FindInstanceType;
using core::InstanceType;

}  // namespace fastest::server

#endif  // FASTEST_SERVER_DISPATCH_INSTANCE_TYPES_H_
