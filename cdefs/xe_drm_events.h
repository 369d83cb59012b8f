/*
 * cdefs/xe_drm_events.h -- <drm/xe_drm_events.h> from the June 2026 series
 * (patch 4/4): the VM_ERR record posted by the rebind worker.  24 bytes; the
 * March RFC posted the first 16 (no timestamp).  Spec sections 1.2, 6.3.
 */
enum drm_xe_watch_event {
	DRM_XE_WATCH_EVENT_VM_ERR = 0
};

struct drm_xe_watch_notification_vm_err {
	struct watch_notification base;
	__u32 vm_id;
	__s32 error_code;
	__u64 timestamp_ns;
};
