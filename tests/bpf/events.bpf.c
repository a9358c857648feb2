// SPDX-License-Identifier: GPL-2.0
// events: a socket filter that writes records to a ring buffer and to a perf event array,
// for bpfmapd's ReadEvents tests.
//
// Attached with SO_ATTACH_BPF to a UDP socket on 127.0.0.1, it runs once per datagram that
// reaches the socket, lets the packet through whole, and writes `burst` records (default 1)
// to each of:
//   ev_ring   RINGBUF (1 MiB)
//   ev_perf   PERF_EVENT_ARRAY, on the current CPU (BPF_F_CURRENT_CPU)
// A record is a struct event: the first 8 bytes of the datagram's payload (the sender's
// sequence number), skb->len, and the record's index within the datagram. With `big` set,
// records are BIG bytes: the struct event, then zeroes.
//   ev_config ARRAY[1] of struct config { burst, big }: written by the test
//   ev_stats  ARRAY[4] of u64: [0] ring records written, [1] ring records refused (full),
//             [2] perf records written, [3] perf records refused (no reader, or full)
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define BIG 4096
#define MAX_BURST 64

struct event {
	__u64 seq;
	__u32 len;
	__u32 index;
};

struct config {
	__u32 burst;
	__u32 big;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 20);
} ev_ring SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} ev_perf SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} ev_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} ev_stats SEC(".maps");

struct big_record {
	char bytes[BIG];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct big_record);
} ev_scratch SEC(".maps");

static __always_inline void count(__u32 key)
{
	__u64 *v = bpf_map_lookup_elem(&ev_stats, &key);

	if (v)
		__sync_fetch_and_add(v, 1);
}

/* One record to each buffer. A function of its own (not inlined), so that struct event is
 * in the program's BTF as its parameter's type: ReadEvents can decode records by name. */
static __noinline int emit(struct __sk_buff *skb, struct event *ev, struct big_record *big)
{
	long ring, perf;

	if (big) {
		__builtin_memcpy(big->bytes, ev, sizeof(*ev));
		ring = bpf_ringbuf_output(&ev_ring, big, sizeof(*big), 0);
		perf = bpf_perf_event_output(skb, &ev_perf, BPF_F_CURRENT_CPU, big, sizeof(*big));
	} else {
		ring = bpf_ringbuf_output(&ev_ring, ev, sizeof(*ev), 0);
		perf = bpf_perf_event_output(skb, &ev_perf, BPF_F_CURRENT_CPU, ev, sizeof(*ev));
	}
	count(ring == 0 ? 0 : 1);
	count(perf == 0 ? 2 : 3);
	return 0;
}

SEC("socket")
int emit_events(struct __sk_buff *skb)
{
	struct event ev = {};
	struct config *cfg;
	struct big_record *big = NULL;
	__u32 zero = 0, burst = 1, i;

	cfg = bpf_map_lookup_elem(&ev_config, &zero);
	if (cfg) {
		if (cfg->burst)
			burst = cfg->burst;
		if (cfg->big)
			big = bpf_map_lookup_elem(&ev_scratch, &zero);
	}
	/* The payload starts after the 8-byte UDP header. */
	if (bpf_skb_load_bytes(skb, 8, &ev.seq, sizeof(ev.seq)) < 0)
		ev.seq = ~0ULL;
	ev.len = skb->len;

	for (i = 0; i < MAX_BURST; i++) {
		if (i >= burst)
			break;
		ev.index = i;
		emit(skb, &ev, big);
	}
	return skb->len;
}

char LICENSE[] SEC("license") = "GPL";
