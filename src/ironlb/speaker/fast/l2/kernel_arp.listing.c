/* The in-kernel ARP responder, kernel_arp.program(), as C would say it. Not compiled: for reading only.
 *
 * The program is assembled by kernel_arp.py from ebpf.py's instructions; this listing is the same program
 * in C. Each label below is a Label in the program, in the same order. Each statement ends with the
 * number of instructions it assembles to, in brackets. A test checks that the labels agree and that each
 * block's brackets add up to the instructions under its label, so the program cannot change without this
 * listing: tests/unit/speaker/fast/l2/test_kernel_arp_listing.py.
 *
 * Registers: r1-r5 carry a call's arguments and are lost across it; r6 holds the skb, r7 the frame, r8 and
 * r9 the asker's MAC while the reply is written; r0 is a call's result and the program's.
 * The frame (Ethernet + ARP for IPv4): 0 destination MAC, 6 source MAC, 12 EtherType, 14 hardware and
 * protocol types, 18 their address sizes, 20 operation, 22 sender MAC, 28 sender IP, 32 target MAC,
 * 38 target IP; 42 bytes in all.
 * Maps: owned (IPv4 address -> 1, this interface's), own_macs (MAC padded to 8 bytes -> 1, all of this
 * node's), lease (slot 0: CLOCK_MONOTONIC deadline in ns), stats (slot 0: replies sent).
 */

int ironlb_arp(struct __sk_buff *skb)
{
headers:
    struct __sk_buff *ctx = skb;                                     /* [1] r6: kept across calls */
    u8 *frame = (u8 *)(long)skb->data;                               /* [1] r7 */
    if (frame + 42 > (u8 *)(long)skb->data_end)                      /* [4] shorter than an ARP frame */
        goto pass;                                                   /*     (or not linear) */
    if (ctx->vlan_present)                                           /* [2] a tagged frame */
        goto pass;
    if (ctx->pkt_type > PACKET_MULTICAST)                            /* [2] to another host's MAC */
        goto pass;
    if (*(u16 *)(frame + 12) != htons(ETH_P_ARP))                    /* [2] */
        goto pass;
    if (*(u32 *)(frame + 14) != htonl(0x00010800))                   /* [2] Ethernet hardware, IPv4 */
        goto pass;
    if (*(u16 *)(frame + 18) != htons(0x0604))                       /* [2] 6- and 4-byte addresses */
        goto pass;
    if (*(u16 *)(frame + 20) != htons(ARPOP_REQUEST))                /* [2] a request */
        goto pass;

lease:  /* the fast plane's loop is alive: it keeps moving the deadline on */
    u32 zero = 0;                                                    /* [1] at fp-20 */
    u64 *deadline = bpf_map_lookup_elem(&lease, &zero);              /* [4] */
    if (!deadline)                                                   /* [1] */
        goto pass;
    if (bpf_ktime_get_ns() > *deadline)                              /* [3] the lease has run out */
        goto pass;

target:  /* the target IP is owned here */
    u32 ip = *(u32 *)(frame + 38);                                   /* [2] at fp-8 */
    if (!bpf_map_lookup_elem(&owned, &ip))                           /* [5] */
        goto pass;

sender:  /* the sender claims an owned IP: another host answers for it, and the responder reports that */
    ip = *(u32 *)(frame + 28);                                       /* [2] */
    if (bpf_map_lookup_elem(&owned, &ip))                            /* [5] */
        goto pass;

from_us:  /* from one of this node's MACs (Ethernet source or ARP sender): ours, heard back */
    u64 mac = 0;                                                     /* [1] at fp-16 */
    memcpy(&mac, frame + 6, 6);                                      /* [4] */
    if (bpf_map_lookup_elem(&own_macs, &mac))                        /* [5] */
        goto pass;
    mac = 0;                                                         /* [1] */
    memcpy(&mac, frame + 22, 6);                                     /* [4] */
    if (bpf_map_lookup_elem(&own_macs, &mac))                        /* [5] */
        goto pass;

reply:  /* the request becomes the reply, in place: to the asker, from us (OUR_MAC: built into the program) */
    u32 asker_ip = *(u32 *)(frame + 28);                             /* [1] r4 */
    u32 owned_ip = *(u32 *)(frame + 38);                             /* [1] r5 */
    u32 asker_lo = *(u32 *)(frame + 22);                             /* [1] r8: the asker's MAC, */
    u16 asker_hi = *(u16 *)(frame + 26);                             /* [1] r9: in two parts */
    *(u32 *)(frame + 0) = asker_lo; *(u16 *)(frame + 4) = asker_hi;  /* [2] Ethernet destination: the asker */
    *(u32 *)(frame + 6) = OUR_MAC_LO; *(u16 *)(frame + 10) = OUR_MAC_HI;   /* [2] Ethernet source: us */
    *(u16 *)(frame + 20) = htons(ARPOP_REPLY);                       /* [1] */
    *(u32 *)(frame + 22) = OUR_MAC_LO; *(u16 *)(frame + 26) = OUR_MAC_HI;  /* [2] sender: us, */
    *(u32 *)(frame + 28) = owned_ip;                                 /* [1] at the owned IP */
    *(u32 *)(frame + 32) = asker_lo; *(u16 *)(frame + 36) = asker_hi;      /* [2] target: the asker */
    *(u32 *)(frame + 38) = asker_ip;                                 /* [1] */

count:
    u64 *replies = bpf_map_lookup_elem(&stats, &zero);               /* [5] zero stored again at fp-20 */
    if (!replies)                                                    /* [1] */
        goto send;
    __sync_fetch_and_add(replies, 1);                                /* [2] */

send:
    return bpf_redirect(ctx->ifindex, 0);                            /* [4] out of the interface it came in by */

pass:
    return TCX_NEXT;                                                 /* [2] on to the stack, untouched */
}
