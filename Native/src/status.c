#include "lifl_native.h"

const char *lifl_strerror(int status)
{
    switch (status) {
    case LIFL_OK:
        return "success";
    case LIFL_E_NOMEM:
        return "the pool has no free block large enough";
    case LIFL_E_INVAL:
        return "invalid argument";
    case LIFL_E_STALE:
        return "the descriptor names no live buffer of this pool";
    case LIFL_E_SYS:
        return "a system call failed (see errno)";
    case LIFL_E_TOOLARGE:
        return "longer than the largest buffer the pool can hold";
    case LIFL_E_SLOTS:
        return "every process slot of the pool is taken";
    case LIFL_E_LAYOUT:
        return "the shared-memory segment has another layout or was never initialized";
    case LIFL_E_FULL:
        return "the queue is full";
    case LIFL_E_EMPTY:
        return "the queue is empty";
    case LIFL_E_TIMEOUT:
        return "timed out";
    case LIFL_E_NOTHELD:
        return "this process holds no reference to the buffer";
    case LIFL_E_NOSLOT:
        return "the slot is not attached to a live process";
    case LIFL_E_UNSUPPORTED:
        return "not supported by this build or kernel";
    case LIFL_E_NOBEACON:
        return "no process of this node lit a beacon of that name";
    default:
        return "unknown status";
    }
}
