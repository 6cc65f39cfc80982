/*
 * common.h: what every reeldb module shares: the error codes, the asserts
 * that stay on in release builds, and a few arithmetic helpers.
 *
 * Errors. Every call that can fail returns int: 0 on success, a negative
 * value on failure. System failures are -errno (REEL_ERR(errno)); reeldb's
 * own failures sit in a private negative range below -30000 (as LMDB does), so
 * the two never collide. reel_strerror() names both.
 *
 * Asserts. REEL_ASSERT is for programmer errors only (a broken invariant),
 * never for bad input or I/O errors, which are returned. It stays on in
 * release builds: a storage engine that goes on after its invariants broke
 * writes corruption to disk.
 */
#ifndef REEL_COMMON_H
#define REEL_COMMON_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

/* reeldb's own error codes: name, value, message. */
#define REEL_ERRNO_MAP(XX)                                                           \
    XX(CORRUPT, -30700, "log corruption: a record in the middle of the log is damaged") \
    XX(TORN, -30701, "torn tail: an incomplete last batch")                            \
    XX(FAILED, -30702, "the log failed earlier and refuses writes (sticky)")           \
    XX(LOCKED, -30703, "the log is locked by another process")                         \
    XX(VERSION, -30704, "unsupported on-disk format version")                          \
    XX(FULL, -30705, "queue full: too many appends in flight")                         \
    XX(TOOBIG, -30706, "record larger than the maximum payload")                       \
    XX(END, -30707, "end of the log")                                                  \
    XX(CLOSED, -30708, "the log is closed")                                            \
    XX(RDONLY, -30709, "the log is open read-only")                                    \
    XX(NOTFOUND, -30710, "offset not in the log")                                      \
    XX(CHAIN, -30711, "hash chain broken: a record does not follow its predecessor")   \
    XX(MISSING, -30712, "a segment is missing from the log")                           \
    XX(USAGE, -30713, "bad arguments")

enum reel_errno {
#define REEL__ENUM(name, value, msg) REEL_E##name = (value),
    REEL_ERRNO_MAP(REEL__ENUM)
#undef REEL__ENUM
};

#define REEL_ERR(e) (-(e))

/* Human text for any return code of reeldb: its own codes and -errno. */
const char *reel_strerror(int err);
/* Short symbolic name: "CORRUPT", "EIO", ... */
const char *reel_err_name(int err);

/* Asserts that stay on. One condition per assert, so a failure says which. */
#define REEL_ASSERT(expr) \
    ((expr) ? (void)0 : reel__assert_fail(#expr, __FILE__, __LINE__, __func__))
_Noreturn void reel__assert_fail(const char *expr, const char *file, int line, const char *func);

#define REEL_LIKELY(x)   __builtin_expect(!!(x), 1)
#define REEL_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define REEL_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* Round up to a power-of-two alignment. */
static inline uint64_t reel_align_up(uint64_t value, uint64_t align)
{
    return (value + align - 1) & ~(align - 1);
}

static inline int reel_is_pow2(uint64_t value)
{
    return value != 0 && (value & (value - 1)) == 0;
}

/* Little-endian loads and stores: the on-disk format is little-endian on
 * every host. Byte by byte, so alignment never matters; compilers fold
 * each into one load or store on little-endian hosts. */
static inline void reel_store_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

/* Decimal digits of a u64 at most (UINT64_MAX has 20). */
#define REEL_U64_DIGITS_MAX 20u

/* Writes v's decimal digits, without printf (it runs for every integer of
 * /v1/log, exports and answer heads), at the end of buf: they are
 * buf[i .. REEL_U64_DIGITS_MAX) for the i returned. No NUL. */
static inline size_t reel_u64_digits(char buf[REEL_U64_DIGITS_MAX], uint64_t v)
{
    size_t n = REEL_U64_DIGITS_MAX;
    do {
        buf[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    return n;
}

static inline void reel_store_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void reel_store_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint16_t reel_load_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t reel_load_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t reel_load_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* Formats a message into buf (len bytes) for the callers that report one;
 * buf NULL or len 0: nothing. */
void reel_errf(char *buf, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Wall clock in milliseconds and a monotonic clock in nanoseconds. */
uint64_t reel_now_ms(void);
uint64_t reel_mono_ns(void);

#endif /* REEL_COMMON_H */
