/* A minimal libmodbus Modbus-TCP server: the C reference point for tests/bench/modbus_bench.py.
 *
 * One process, one thread, select() over the listening socket and every client socket, as in
 * libmodbus's own tests/bandwidth-server-many-up.c. Holding and input registers 0..255 hold
 * fixed values; libmodbus answers any unit id over TCP.
 *
 * usage: libmodbus_server PORT   (listens on 127.0.0.1 only)
 */
#include <errno.h>
#include <modbus.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#define NB_REGISTERS 256
#define MAX_CLIENTS 64

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[1]);
    if (port <= 0 || port > 65535) {
        fprintf(stderr, "bad port: %s\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a client that vanishes mid-reply must not kill the server */

    modbus_t *ctx = modbus_new_tcp("127.0.0.1", port);
    if (ctx == NULL) {
        fprintf(stderr, "modbus_new_tcp: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_mapping_t *map = modbus_mapping_new(0, 0, NB_REGISTERS, NB_REGISTERS);
    if (map == NULL) {
        fprintf(stderr, "modbus_mapping_new: %s\n", modbus_strerror(errno));
        modbus_free(ctx);
        return 1;
    }
    for (int i = 0; i < NB_REGISTERS; i++) {
        map->tab_registers[i] = (uint16_t)(1000 + i);
        map->tab_input_registers[i] = (uint16_t)(2000 + i);
    }

    int server = modbus_tcp_listen(ctx, MAX_CLIENTS);
    if (server == -1) {
        fprintf(stderr, "modbus_tcp_listen: %s\n", modbus_strerror(errno));
        modbus_mapping_free(map);
        modbus_free(ctx);
        return 1;
    }
    printf("listening on 127.0.0.1:%d\n", port);
    fflush(stdout);

    fd_set all;
    FD_ZERO(&all);
    FD_SET(server, &all);
    int fdmax = server;
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];

    for (;;) {
        fd_set ready = all;
        if (select(fdmax + 1, &ready, NULL, NULL, NULL) == -1) {
            if (errno == EINTR)
                continue;
            perror("select");
            break;
        }
        for (int fd = 0; fd <= fdmax; fd++) {
            if (!FD_ISSET(fd, &ready))
                continue;
            if (fd == server) {
                /* modbus_tcp_accept stores the new socket in ctx; we only keep the fd. */
                int client = modbus_tcp_accept(ctx, &server);
                if (client == -1) {
                    fprintf(stderr, "accept: %s\n", modbus_strerror(errno));
                    continue;
                }
                if (client >= FD_SETSIZE) {
                    close(client);
                    continue;
                }
                FD_SET(client, &all);
                if (client > fdmax)
                    fdmax = client;
                continue;
            }
            modbus_set_socket(ctx, fd);
            int rc = modbus_receive(ctx, query);
            if (rc > 0) {
                modbus_reply(ctx, query, rc, map);
            } else if (rc == -1) { /* closed by the client, or a broken frame */
                close(fd);
                FD_CLR(fd, &all);
                if (fd == fdmax)
                    while (fdmax > server && !FD_ISSET(fdmax, &all))
                        fdmax--;
            }
        }
    }
    close(server);
    modbus_mapping_free(map);
    modbus_free(ctx);
    return 0;
}
