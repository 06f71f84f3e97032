//! Writing the framebuffer as PNG.

use std::path::Path;

/// Saves an RGBA framebuffer as an RGB PNG (written atomically).
pub fn save_png(path: &Path, rgba: &[u8], width: u16, height: u16) -> anyhow::Result<()> {
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    write(path, &rgb, png::ColorType::Rgb, width, height)
}

/// Saves an RGBA image (a pointer, with its transparency) as PNG.
pub fn save_rgba_png(path: &Path, rgba: &[u8], width: u16, height: u16) -> anyhow::Result<()> {
    write(path, rgba, png::ColorType::Rgba, width, height)
}

fn write(
    path: &Path,
    data: &[u8],
    color: png::ColorType,
    width: u16,
    height: u16,
) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, u32::from(width), u32::from(height));
        encoder.set_color(color);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(data)?;
    }
    files::write_atomic(path, &bytes, files::Mode::Public)?;
    Ok(())
}
