/* sock.c — sockets owned by actors (stub: the implementation is being written). */
#include "subsys.h"

int tr_listen(tr_actor *self, const char *addr, const tr_listen_opts *opts, tr_sock *out)
{ (void)self; (void)addr; (void)opts; (void)out; return TR_ESYSTEM; }
int tr_connect(tr_actor *self, const char *addr, const tr_connect_opts *opts, tr_sock *out)
{ (void)self; (void)addr; (void)opts; (void)out; return TR_ESYSTEM; }
int tr_sock_read(tr_actor *self, tr_sock s, int n) { (void)self; (void)s; (void)n; return TR_ESYSTEM; }
int tr_sock_frame(tr_actor *self, tr_sock s, size_t max, const void *delim, size_t dlen)
{ (void)self; (void)s; (void)max; (void)delim; (void)dlen; return TR_ESYSTEM; }
int tr_sock_write(tr_actor *self, tr_sock s, const void *data, size_t len)
{ (void)self; (void)s; (void)data; (void)len; return TR_ESYSTEM; }
int tr_sock_writev(tr_actor *self, tr_sock s, const tr_iov *iov, unsigned n)
{ (void)self; (void)s; (void)iov; (void)n; return TR_ESYSTEM; }
int tr_sock_write_owned(tr_actor *self, tr_sock s, void *buf, size_t len, tr_free_fn f)
{ (void)self; (void)s; (void)buf; (void)len; (void)f; return TR_ESYSTEM; }
int tr_sock_shutdown(tr_actor *self, tr_sock s) { (void)self; (void)s; return TR_ESYSTEM; }
int tr_sock_close(tr_actor *self, tr_sock s) { (void)self; (void)s; return TR_ESYSTEM; }
int tr_sock_give(tr_actor *self, tr_sock s, tr_pid to) { (void)self; (void)s; (void)to; return TR_ESYSTEM; }
int tr_sock_addr(tr_actor *self, tr_sock s, int peer, char *buf, size_t len)
{ (void)self; (void)s; (void)peer; (void)buf; (void)len; return TR_ESYSTEM; }
int tr_sock_info_get(tr_actor *self, tr_sock s, tr_sock_info *out) { (void)self; (void)s; (void)out; return TR_ESYSTEM; }
