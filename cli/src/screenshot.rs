//! Writing the framebuffer as PNG.

use std::path::Path;

/// Saves an RGBA framebuffer as an RGB PNG (written atomically).
pub fn save_png(path: &Path, rgba: &[u8], width: u16, height: u16) -> anyhow::Result<()> {
    let rgb: Vec<u8> = rgba
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, u32::from(width), u32::from(height));
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.write_header()?.write_image_data(&rgb)?;
    }
    files::write_atomic(path, &bytes, files::Mode::Public)?;
    Ok(())
}
