/*
 * rawsyn IFACE GATEWAY-MAC DST-IP DST-PORT
 *
 * Sends one TCP SYN from IFACE's own MAC and IPv4 address, in an Ethernet frame addressed to
 * GATEWAY-MAC, to DST-IP:DST-PORT (an AF_PACKET socket, so the kernel's routing does not
 * stop a destination such as 127.0.0.1), then watches IFACE for 3 seconds for a TCP
 * segment back from DST-IP:DST-PORT. Prints "SYNACK" and exits 0 when a SYN-ACK came,
 * prints "NOREPLY" and exits 1 when none did, exits 2 on an error. Needs CAP_NET_RAW.
 * Built by tests/tests/loopback_guard.rs with `cc -static`; written for berth's tests.
 */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/tcp.h>
#include <linux/if_ether.h>
#include <linux/if_packet.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int fail(const char *what) {
    perror(what);
    return 2;
}

static uint16_t csum(const void *data, size_t len, uint32_t sum) {
    const uint8_t *p = data;
    for (; len > 1; p += 2, len -= 2)
        sum += (uint32_t)p[0] << 8 | p[1];
    if (len)
        sum += (uint32_t)p[0] << 8;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return (uint16_t)~sum;
}

static long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: rawsyn IFACE GATEWAY-MAC DST-IP DST-PORT\n");
        return 2;
    }
    uint8_t gw[6];
    if (sscanf(argv[2], "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &gw[0], &gw[1], &gw[2], &gw[3],
               &gw[4], &gw[5]) != 6) {
        fprintf(stderr, "bad MAC %s\n", argv[2]);
        return 2;
    }
    struct in_addr dst;
    if (inet_pton(AF_INET, argv[3], &dst) != 1) {
        fprintf(stderr, "bad address %s\n", argv[3]);
        return 2;
    }
    uint16_t dport = (uint16_t)atoi(argv[4]);

    int fd = socket(AF_PACKET, SOCK_RAW, htons(ETH_P_IP));
    if (fd < 0)
        return fail("socket");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    strncpy(ifr.ifr_name, argv[1], IFNAMSIZ - 1);
    if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0)
        return fail("SIOCGIFINDEX");
    int ifindex = ifr.ifr_ifindex;
    if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0)
        return fail("SIOCGIFHWADDR");
    uint8_t mac[6];
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    int ufd = socket(AF_INET, SOCK_DGRAM, 0);
    if (ufd < 0 || ioctl(ufd, SIOCGIFADDR, &ifr) < 0)
        return fail("SIOCGIFADDR");
    struct in_addr src = ((struct sockaddr_in *)&ifr.ifr_addr)->sin_addr;

    struct sockaddr_ll ll;
    memset(&ll, 0, sizeof ll);
    ll.sll_family = AF_PACKET;
    ll.sll_protocol = htons(ETH_P_IP);
    ll.sll_ifindex = ifindex;
    if (bind(fd, (struct sockaddr *)&ll, sizeof ll) < 0)
        return fail("bind");

    uint8_t frame[14 + 20 + 20];
    memset(frame, 0, sizeof frame);
    memcpy(frame, gw, 6);
    memcpy(frame + 6, mac, 6);
    frame[12] = 0x08;
    frame[13] = 0x00;
    struct iphdr *ip = (struct iphdr *)(frame + 14);
    ip->version = 4;
    ip->ihl = 5;
    ip->tot_len = htons(40);
    ip->id = htons(0x4242);
    ip->ttl = 64;
    ip->protocol = IPPROTO_TCP;
    ip->saddr = src.s_addr;
    ip->daddr = dst.s_addr;
    ip->check = htons(csum(ip, 20, 0));
    struct tcphdr *tcp = (struct tcphdr *)(frame + 34);
    uint16_t sport = (uint16_t)(40000 + getpid() % 20000);
    tcp->source = htons(sport);
    tcp->dest = htons(dport);
    tcp->seq = htonl(0x12345678);
    tcp->doff = 5;
    tcp->syn = 1;
    tcp->window = htons(65535);
    uint8_t pseudo[12 + 20];
    memcpy(pseudo, &ip->saddr, 4);
    memcpy(pseudo + 4, &ip->daddr, 4);
    pseudo[8] = 0;
    pseudo[9] = IPPROTO_TCP;
    pseudo[10] = 0;
    pseudo[11] = 20;
    memcpy(pseudo + 12, tcp, 20);
    tcp->check = htons(csum(pseudo, sizeof pseudo, 0));

    if (send(fd, frame, sizeof frame, 0) != (ssize_t)sizeof frame)
        return fail("send");

    long deadline = now_ms() + 3000;
    for (;;) {
        long left = deadline - now_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        uint8_t buf[2048];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n < 14 + 20 + 20)
            continue;
        struct iphdr *rip = (struct iphdr *)(buf + 14);
        if (rip->protocol != IPPROTO_TCP || rip->saddr != dst.s_addr)
            continue;
        struct tcphdr *rt = (struct tcphdr *)(buf + 14 + rip->ihl * 4);
        if (ntohs(rt->source) != dport || ntohs(rt->dest) != sport)
            continue;
        if (rt->syn && rt->ack) {
            printf("SYNACK\n");
            return 0;
        }
    }
    printf("NOREPLY\n");
    return 1;
}
