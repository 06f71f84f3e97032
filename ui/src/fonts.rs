//! Fonts: egui's own for Latin text (feature `latin-fonts`; without it the
//! next one draws everything), then a subset of Noto Sans CJK JP with every
//! character of the UI plus ASCII, Latin-1 and kana (see `cargo xtask
//! font`; compiled in with feature `bundled-font`, else the platform hands
//! it over), then the platform's fonts for Japanese that users type
//! themselves (a system CJK font on the desktop; in the browser, eframe has
//! the browser draw glyphs that no font here has).

use std::sync::Arc;

use egui::{FontData, FontDefinitions, FontFamily};

/// The UI's Japanese glyphs (SIL Open Font License; see assets/fonts).
#[cfg(feature = "bundled-font")]
pub const UI_FONT: &[u8] = include_bytes!("../../assets/fonts/NotoSansJP-ui.otf");

/// A font file and the face to use in it.
#[derive(Clone)]
pub struct FontFile {
    pub name: String,
    /// Shared: a system font file is megabytes.
    pub data: Arc<Vec<u8>>,
    pub index: u32,
}

/// The font set: egui's defaults, the bundled subset, then `fonts` in order.
pub fn definitions(fonts: Vec<FontFile>) -> FontDefinitions {
    let mut definitions = FontDefinitions::default();
    let mut names = Vec::new();
    #[cfg(feature = "bundled-font")]
    {
        let name = "noto-sans-jp-ui".to_owned();
        let data = Arc::new(FontData::from_static(UI_FONT));
        definitions.font_data.insert(name.clone(), data);
        names.push(name);
    }
    for font in fonts {
        let data = FontData::from_blob(font.data, font.index);
        definitions
            .font_data
            .insert(font.name.clone(), Arc::new(data));
        names.push(font.name);
    }
    for family in [FontFamily::Proportional, FontFamily::Monospace] {
        definitions
            .families
            .entry(family)
            .or_default()
            .extend(names.iter().cloned());
    }
    definitions
}
