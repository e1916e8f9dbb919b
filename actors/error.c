/*
 * error.c — texts for error codes and exit kinds, generated from the one
 * table in troupe.h (TR_ERRNO_MAP).
 */
#include <stdio.h>
#include <string.h>

#include "core.h"

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

void tr__error_text(char *buf, size_t len, int code, const char *text)
{
    const char *name = tr_err_name(code);
    bool ours = strcmp(name, "TR_E?") != 0;
    if (!text)
        text = ours ? tr_strerror(code) : NULL;
    if (ours)
        snprintf(buf, len, "error %d (%s): %s", code, name, text);
    else if (text)
        snprintf(buf, len, "error %d: %s", code, text); /* the application's code */
    else
        snprintf(buf, len, "error %d", code);
}
