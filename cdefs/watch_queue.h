/*
 * cdefs/watch_queue.h -- <linux/watch_queue.h> (general notification queue),
 * with the series' WATCH_TYPE_DRM_XE_NOTIFY.  Values: spec sections 1.1, 1.2.
 * <linux/keyctl.h>'s key_notification lives here too: keyrings are the
 * real-kernel event source the real-kernel tier compares the fake with.
 * WATCH_QUEUE_NOTE_SIZE and WATCH_QUEUE_NOTES_PER_PAGE are kernel-internal
 * (include/linux/watch_queue.h, 4 KiB pages), not UAPI; the rest matches the
 * UAPI text, WATCH_TYPE_DRM_XE_NOTIFY and WATCH_TYPE__NR = 3 aside.
 */
#define O_NOTIFICATION_PIPE 128
#define WATCH_QUEUE_NOTE_SIZE 128
#define WATCH_QUEUE_NOTES_PER_PAGE 32

enum watch_notification_type {
	WATCH_TYPE_META = 0,
	WATCH_TYPE_KEY_NOTIFY = 1,
	WATCH_TYPE_DRM_XE_NOTIFY = 2,
	WATCH_TYPE__NR = 3
};

enum watch_meta_notification_subtype {
	WATCH_META_REMOVAL_NOTIFICATION = 0,
	WATCH_META_LOSS_NOTIFICATION = 1
};

struct watch_notification {
	__u32 type:24;
	__u32 subtype:8;
	__u32 info;
};

#define WATCH_INFO_LENGTH 0x0000007f
#define WATCH_INFO_LENGTH__SHIFT 0
#define WATCH_INFO_ID 0x0000ff00
#define WATCH_INFO_ID__SHIFT 8
#define WATCH_INFO_TYPE_INFO 0xffff0000
#define WATCH_INFO_TYPE_INFO__SHIFT 16
#define WATCH_INFO_FLAG_0 0x00010000
#define WATCH_INFO_FLAG_1 0x00020000
#define WATCH_INFO_FLAG_2 0x00040000
#define WATCH_INFO_FLAG_3 0x00080000
#define WATCH_INFO_FLAG_4 0x00100000
#define WATCH_INFO_FLAG_5 0x00200000
#define WATCH_INFO_FLAG_6 0x00400000
#define WATCH_INFO_FLAG_7 0x00800000

struct watch_notification_type_filter {
	__u32 type;
	__u32 info_filter;
	__u32 info_mask;
	__u32 subtype_filter[8];
};

struct watch_notification_filter {
	__u32 nr_filters;
	__u32 __reserved;
	struct watch_notification_type_filter filters[];
};

struct watch_notification_removal {
	struct watch_notification watch;
	__u64 id;
};

enum key_notification_subtype {
	NOTIFY_KEY_INSTANTIATED = 0,
	NOTIFY_KEY_UPDATED = 1,
	NOTIFY_KEY_LINKED = 2,
	NOTIFY_KEY_UNLINKED = 3,
	NOTIFY_KEY_CLEARED = 4,
	NOTIFY_KEY_REVOKED = 5,
	NOTIFY_KEY_INVALIDATED = 6,
	NOTIFY_KEY_SETATTR = 7
};

struct key_notification {
	struct watch_notification watch;
	__u32 key_id;
	__u32 aux;
};

#define KEYCTL_WATCH_KEY 32
