#include <png.h>

/* PNG_IMAGE_VERSION and the format flags are macros Swift cannot import. */
static inline unsigned int cpng_image_version(void) { return PNG_IMAGE_VERSION; }
static inline unsigned int cpng_format_rgb(void) { return PNG_FORMAT_RGB; }
static inline unsigned int cpng_format_rgba(void) { return PNG_FORMAT_RGBA; }
static inline unsigned int cpng_format_gray(void) { return PNG_FORMAT_GRAY; }
