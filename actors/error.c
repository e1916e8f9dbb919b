/*
 * error.c — texts for error codes and exit kinds, generated from the one
 * table in troupe.h (TR_ERRNO_MAP), and the two ranges: troupe's codes own
 * -1 .. -65535, everything else non-zero is the application's (TR_EUSER(n)
 * below that range, and every positive code). A text never names a troupe
 * error for an application's code.
 */
#include <stdio.h>
#include <string.h>

#include "core.h"

_Static_assert(TR_EUSER(0) == TR_ERR_TROUPE_MIN - 1, "TR_EUSER starts below troupe's range");
_Static_assert(TR_EUSER_NUM(TR_EUSER(TR_EUSER_MAX)) == TR_EUSER_MAX, "TR_EUSER_NUM inverts");
#define TR__ERR_IN_RANGE(name, value, text)                                    \
    _Static_assert((value) < 0 && (value) >= TR_ERR_TROUPE_MIN,                \
                   "TR_" #name " lies in troupe's range");
TR_ERRNO_MAP(TR__ERR_IN_RANGE)
#undef TR__ERR_IN_RANGE

int tr_err_is_user(int code)
{
    return code > 0 || code < TR_ERR_TROUPE_MIN;
}

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
        return tr_err_is_user(code) ? "application error" : "unknown troupe error";
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
        return code > 0 ? "user" : code < TR_ERR_TROUPE_MIN ? "TR_EUSER" : "TR_E?";
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
    case TR_EXIT_NOCONNECTION:
        return "noconnection";
    }
    return "?";
}

void tr__error_text(char *buf, size_t len, int code, const char *text)
{
    if (tr_err_is_user(code)) {
        /* The reason's text defaults to tr_strerror's "application error":
         * no need to say it twice. */
        if (text && (!text[0] || strcmp(text, tr_strerror(code)) == 0))
            text = NULL;
        char what[64];
        if (code > 0)
            snprintf(what, sizeof what, "application error %d", code);
        else
            snprintf(what, sizeof what, "application error %d (TR_EUSER(%d))",
                     TR_EUSER_NUM(code), TR_EUSER_NUM(code));
        if (text)
            snprintf(buf, len, "%s: %s", what, text);
        else
            snprintf(buf, len, "%s", what);
        return;
    }
    /* troupe's range: the table's name, or TR_E? for a code it does not list. */
    snprintf(buf, len, "error %d (%s): %s", code, tr_err_name(code),
             text ? text : tr_strerror(code));
}
