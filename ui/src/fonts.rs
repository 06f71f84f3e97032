//! Fonts: egui's own for Latin text (feature `latin-fonts`; without it the
//! next one draws everything), then a subset of Noto Sans CJK JP with every
//! character of the UI plus ASCII, Latin-1 and kana (see `cargo xtask
//! font`), then whatever CJK fonts the system has, for Japanese that users
//! type themselves.

use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

/// The UI's Japanese glyphs (SIL Open Font License; see assets/fonts).
pub const UI_FONT: &[u8] = include_bytes!("../../assets/fonts/NotoSansJP-ui.otf");

/// A system font file and the face to use in it.
pub struct SystemFont {
    pub name: String,
    pub data: Vec<u8>,
    pub index: u32,
}

/// The font set: egui's defaults, the bundled subset, then `fallbacks`.
pub fn definitions(fallbacks: Vec<SystemFont>) -> FontDefinitions {
    let mut fonts = FontDefinitions::default();
    let mut names = vec!["noto-sans-jp-ui".to_owned()];
    fonts
        .font_data
        .insert(names[0].clone(), Arc::new(FontData::from_static(UI_FONT)));
    for font in fallbacks {
        let data = FontData::from_blob(Arc::new(font.data), font.index);
        fonts.font_data.insert(font.name.clone(), Arc::new(data));
        names.push(font.name);
    }
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        fonts
            .families
            .entry(family)
            .or_default()
            .extend(names.iter().cloned());
    }
    fonts
}
