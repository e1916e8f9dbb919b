/*
 * error.c — texts for error codes and exit kinds, generated from the one
 * table in troupe.h (TR_ERRNO_MAP).
 */
#include "troupe.h"

const char *tr_strerror(int code)
{
    switch (code) {
    case 0:
        return "success";
#define TR__ERR_TEXT(name, value, text)                                        \
    case value:                                                                \
        return text;
        TR_ERRNO_MAP(TR__ERR_TEXT)
#undef TR__ERR_TEXT
    default:
        return "unknown error";
    }
}

const char *tr_err_name(int code)
{
    switch (code) {
    case 0:
        return "TR_OK";
#define TR__ERR_NAME(name, value, text)                                        \
    case value:                                                                \
        return "TR_" #name;
        TR_ERRNO_MAP(TR__ERR_NAME)
#undef TR__ERR_NAME
    default:
        return "TR_E?";
    }
}

const char *tr_exit_kind_name(tr_exit_kind kind)
{
    switch (kind) {
    case TR_EXIT_NORMAL:
        return "normal";
    case TR_EXIT_SHUTDOWN:
        return "shutdown";
    case TR_EXIT_KILLED:
        return "killed";
    case TR_EXIT_ERROR:
        return "error";
    }
    return "?";
}
