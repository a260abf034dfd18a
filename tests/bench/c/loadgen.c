/* Modbus-TCP load generator for tests/bench/modbus_bench.py, on libmodbus's client API.
 *
 * N threads, each with its own connection, send FC3 (or FC4) reads back to back: one request
 * in flight per connection, as a polling SCADA/EMS client does. Requests are timed from the
 * end of a warm-up to the end of the run; only requests that both start and finish inside that
 * window count. Prints "START" and "STOP" when the window opens and closes (the caller samples
 * the server's CPU time then), then one JSON line:
 *   {"requests":..,"seconds":..,"p50_us":..,"p99_us":..,"errors":..,...}
 *
 * usage: loadgen -p PORT [-n THREADS] [-u UNIT] [-a ADDR] [-c COUNT] [-f 3|4] [-w WARMUP_S] [-d DURATION_S]
 * Always connects to 127.0.0.1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <modbus.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_SAMPLES 1000000 /* per thread: bounds memory and the loop whatever the rate */
#define MAX_ERRORS 1000     /* per thread: a broken server must not spin us for the whole run */

typedef struct {
    modbus_t *ctx;
    int fc, addr, count;
    uint64_t t0, t1; /* measurement window, CLOCK_MONOTONIC ns */
    uint32_t *lat;   /* latencies in ns of the counted requests */
    size_t n;
    long errors;
    int capped;
    char first_error[128];
} worker_t;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t) {
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
    }
}

static void *run(void *arg) {
    worker_t *w = arg;
    uint16_t regs[MODBUS_MAX_READ_REGISTERS];
    uint64_t start = now_ns();
    while (start < w->t1) {
        int rc = w->fc == 4 ? modbus_read_input_registers(w->ctx, w->addr, w->count, regs)
                            : modbus_read_registers(w->ctx, w->addr, w->count, regs);
        uint64_t end = now_ns();
        if (rc != w->count) {
            int err = errno;
            if (w->errors++ == 0)
                snprintf(w->first_error, sizeof w->first_error, "%s", modbus_strerror(err));
            if (w->errors >= MAX_ERRORS)
                break;
            if (err < MODBUS_ENOBASE) { /* a socket error, not a Modbus exception: reconnect */
                modbus_close(w->ctx);
                if (modbus_connect(w->ctx) == -1)
                    break;
            }
        } else if (start >= w->t0 && end <= w->t1) {
            if (w->n >= MAX_SAMPLES) {
                w->capped = 1;
                break;
            }
            w->lat[w->n++] = (uint32_t)(end - start);
        }
        start = end;
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    int port = 0, threads = 1, unit = 1, addr = 0, count = 10, fc = 3;
    double warmup = 0.5, duration = 3.0;
    int opt;
    while ((opt = getopt(argc, argv, "p:n:u:a:c:f:w:d:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'n': threads = atoi(optarg); break;
        case 'u': unit = atoi(optarg); break;
        case 'a': addr = atoi(optarg); break;
        case 'c': count = atoi(optarg); break;
        case 'f': fc = atoi(optarg); break;
        case 'w': warmup = atof(optarg); break;
        case 'd': duration = atof(optarg); break;
        default:
            fprintf(stderr, "usage: %s -p PORT [-n THREADS] [-u UNIT] [-a ADDR] [-c COUNT] [-f 3|4] [-w S] [-d S]\n",
                    argv[0]);
            return 2;
        }
    }
    if (port <= 0 || port > 65535 || threads < 1 || threads > MAX_THREADS || count < 1 ||
        count > MODBUS_MAX_READ_REGISTERS || (fc != 3 && fc != 4) || warmup < 0 || duration <= 0 ||
        duration > 60) {
        fprintf(stderr, "loadgen: bad arguments\n");
        return 2;
    }

    worker_t *ws = calloc((size_t)threads, sizeof *ws);
    pthread_t *tids = calloc((size_t)threads, sizeof *tids);
    if (ws == NULL || tids == NULL)
        return 1;
    for (int i = 0; i < threads; i++) { /* connect everyone before the clock starts */
        worker_t *w = &ws[i];
        w->ctx = modbus_new_tcp("127.0.0.1", port);
        w->lat = malloc(MAX_SAMPLES * sizeof *w->lat);
        if (w->ctx == NULL || w->lat == NULL) {
            fprintf(stderr, "loadgen: out of memory\n");
            return 1;
        }
        modbus_set_slave(w->ctx, unit);
        modbus_set_response_timeout(w->ctx, 2, 0);
        if (modbus_connect(w->ctx) == -1) {
            fprintf(stderr, "loadgen: connect 127.0.0.1:%d: %s\n", port, modbus_strerror(errno));
            return 1;
        }
        w->fc = fc;
        w->addr = addr;
        w->count = count;
    }
    uint64_t t0 = now_ns() + (uint64_t)(warmup * 1e9);
    uint64_t t1 = t0 + (uint64_t)(duration * 1e9);
    for (int i = 0; i < threads; i++) {
        ws[i].t0 = t0;
        ws[i].t1 = t1;
        if (pthread_create(&tids[i], NULL, run, &ws[i]) != 0) {
            fprintf(stderr, "loadgen: pthread_create failed\n");
            return 1;
        }
    }
    sleep_until(t0);
    puts("START");
    fflush(stdout);
    sleep_until(t1);
    puts("STOP");
    fflush(stdout);

    size_t total = 0;
    long errors = 0;
    int capped = 0;
    const char *first_error = "";
    for (int i = 0; i < threads; i++) {
        pthread_join(tids[i], NULL);
        total += ws[i].n;
        errors += ws[i].errors;
        capped |= ws[i].capped;
        if (!*first_error && ws[i].errors)
            first_error = ws[i].first_error;
    }
    uint32_t *all = malloc((total ? total : 1) * sizeof *all);
    if (all == NULL)
        return 1;
    size_t k = 0;
    for (int i = 0; i < threads; i++) {
        memcpy(all + k, ws[i].lat, ws[i].n * sizeof *all);
        k += ws[i].n;
    }
    qsort(all, total, sizeof *all, cmp_u32);
    double p50 = total ? all[total / 2] / 1e3 : 0, p99 = total ? all[(size_t)(total * 0.99)] / 1e3 : 0;
    printf("{\"requests\":%zu,\"seconds\":%.3f,\"p50_us\":%.1f,\"p99_us\":%.1f,\"errors\":%ld,"
           "\"threads\":%d,\"capped\":%s,\"first_error\":\"%s\",\"loadgen\":\"c-libmodbus\"}\n",
           total, duration, p50, p99, errors, threads, capped ? "true" : "false", first_error);
    for (int i = 0; i < threads; i++) {
        modbus_close(ws[i].ctx);
        modbus_free(ws[i].ctx);
        free(ws[i].lat);
    }
    free(all);
    free(ws);
    free(tids);
    return 0;
}
