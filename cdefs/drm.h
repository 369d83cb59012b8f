/*
 * cdefs/drm.h -- the parts of <drm/drm.h> xeclient uses, as declarations that
 * both cffi (cdef) and a C compiler accept.  Values: spec section 2.
 *
 * Kernel UAPI headers get their fixed-width types from <linux/types.h>; cffi
 * knows the <stdint.h> names natively, and the ABI proof compiles these files
 * after <stdint.h>/<stddef.h>, so the __uN aliases are declared here once.
 */
typedef uint8_t __u8;
typedef int8_t __s8;
typedef uint16_t __u16;
typedef int16_t __s16;
typedef uint32_t __u32;
typedef int32_t __s32;
typedef uint64_t __u64;
typedef int64_t __s64;

#define DRM_IOCTL_BASE 100
#define DRM_COMMAND_BASE 64
#define DRM_COMMAND_END 160

struct drm_version {
	int version_major;
	int version_minor;
	int version_patchlevel;
	size_t name_len;
	char *name;
	size_t date_len;
	char *date;
	size_t desc_len;
	char *desc;
};

struct drm_gem_close {
	__u32 handle;
	__u32 pad;
};
