// Images are downscaled in the browser to at most 1280 px on the longer side and re-encoded
// (WebP where the browser can encode it, else JPEG) so they fit in one WebSocket message.

export const MAX_SIDE = 1280;

async function decode(file) {
    if (window.createImageBitmap) {
        try {
            return await createImageBitmap(file);
        } catch (e) {
            /* fall through to <img> decoding */
        }
    }
    const url = URL.createObjectURL(file);
    try {
        const img = new Image();
        img.src = url;
        await img.decode();
        return img;
    } finally {
        URL.revokeObjectURL(url);
    }
}

function draw(src, w, h, flatten) {
    const c = document.createElement('canvas');
    c.width = w;
    c.height = h;
    const g = c.getContext('2d');
    if (flatten) {
        /* JPEG has no alpha: flatten onto white instead of black. */
        g.fillStyle = '#fff';
        g.fillRect(0, 0, w, h);
    }
    g.imageSmoothingQuality = 'high';
    g.drawImage(src, 0, 0, w, h);
    return c;
}

/*
 * File -> data URL of at most `max_chars` characters. Tries WebP then JPEG, lowering quality
 * and then size until it fits. Rejects files that are not images.
 * The full-size picture is scaled down once; every later attempt starts from that small copy,
 * which is what keeps a 20 MB photo from taking many seconds.
 */
export async function prepare_image(file, max_chars) {
    if (!file || !/^image\//.test(file.type || '')) throw new Error('not an image');
    const src = await decode(file);
    const sw = src.width || src.naturalWidth;
    const sh = src.height || src.naturalHeight;
    if (!sw || !sh) throw new Error('empty image');
    let scale = Math.min(1, MAX_SIDE / Math.max(sw, sh));
    const base = draw(src, Math.max(1, Math.round(sw * scale)), Math.max(1, Math.round(sh * scale)), false);
    if (src.close) src.close();
    let flat = null;
    for (let round = 0; round < 8; round++) {
        const w = Math.max(1, Math.round(sw * scale));
        const h = Math.max(1, Math.round(sh * scale));
        const webp = w === base.width && h === base.height ? base : draw(base, w, h, false);
        for (const q of [0.85, 0.7, 0.55]) {
            let url = webp.toDataURL('image/webp', q);
            if (!url.startsWith('data:image/webp')) {
                if (!flat || flat.width !== w) flat = draw(base, w, h, true);
                url = flat.toDataURL('image/jpeg', q);
            }
            if (url.length <= max_chars) return { url, width: w, height: h };
        }
        scale *= 0.7;
    }
    throw new Error('image too large');
}
