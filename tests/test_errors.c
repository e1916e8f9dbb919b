/*
 * test_errors.c — every error code has a distinct text and name; unknown
 * codes and exit kinds have safe fallbacks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <cmocka.h>

#include "troupe.h"

static const int codes[] = {
#define TR__CODE(name, value, text) TR_##name,
    TR_ERRNO_MAP(TR__CODE)
#undef TR__CODE
};
enum { NCODES = sizeof codes / sizeof codes[0] };

static void test_every_code_has_text_and_name(void **state)
{
    (void)state;
    for (int i = 0; i < NCODES; i++) {
        assert_true(codes[i] < 0 && codes[i] >= TR_ERR_TROUPE_MIN);
        assert_false(tr_err_is_user(codes[i]));
        const char *text = tr_strerror(codes[i]);
        const char *name = tr_err_name(codes[i]);
        assert_non_null(text);
        assert_true(strlen(text) > 3);
        assert_string_not_equal(text, "unknown troupe error");
        assert_string_not_equal(text, "application error");
        assert_int_equal(strncmp(name, "TR_E", 4), 0);
        assert_string_not_equal(name, "TR_E?");
        for (int j = 0; j < i; j++) {
            assert_int_not_equal(codes[i], codes[j]);
            assert_string_not_equal(text, tr_strerror(codes[j]));
            assert_string_not_equal(name, tr_err_name(codes[j]));
        }
    }
    assert_string_equal(tr_err_name(TR_ENOACTOR), "TR_ENOACTOR");
    assert_string_equal(tr_err_name(TR_EFULL), "TR_EFULL");
}

static void test_success_and_unknown(void **state)
{
    (void)state;
    assert_int_equal(TR_OK, 0);
    assert_string_equal(tr_err_name(0), "TR_OK");
    assert_string_equal(tr_strerror(0), "success");
    /* Inside troupe's range but not in the table: reserved, troupe's. */
    assert_string_equal(tr_strerror(-9999), "unknown troupe error");
    assert_string_equal(tr_err_name(-9999), "TR_E?");
    assert_string_equal(tr_strerror(TR_ERR_TROUPE_MIN), "unknown troupe error");
    /* Outside it: the application's (test_contract_errors has the rest). */
    assert_string_equal(tr_strerror(12345), "application error");
    assert_string_equal(tr_err_name(12345), "user");
}

static void test_exit_kind_names(void **state)
{
    (void)state;
    assert_string_equal(tr_exit_kind_name(TR_EXIT_NORMAL), "normal");
    assert_string_equal(tr_exit_kind_name(TR_EXIT_SHUTDOWN), "shutdown");
    assert_string_equal(tr_exit_kind_name(TR_EXIT_KILLED), "killed");
    assert_string_equal(tr_exit_kind_name(TR_EXIT_ERROR), "error");
    assert_string_equal(tr_exit_kind_name(TR_EXIT_NOCONNECTION), "noconnection");
    assert_string_equal(tr_exit_kind_name((tr_exit_kind)42), "?");
}

static void test_version(void **state)
{
    (void)state;
    assert_int_equal(TROUPE_VERSION_NUMBER, (TROUPE_VERSION_MAJOR << 16) |
                                                (TROUPE_VERSION_MINOR << 8) |
                                                TROUPE_VERSION_PATCH);
    assert_non_null(strchr(TROUPE_VERSION_STRING, '.'));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_text_and_name),
        cmocka_unit_test(test_success_and_unknown),
        cmocka_unit_test(test_exit_kind_names),
        cmocka_unit_test(test_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
