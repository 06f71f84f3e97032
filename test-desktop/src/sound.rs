//! Sound, server side (ironrdp-rdpsnd): offers IMA ADPCM and PCM, and once
//! a client's sound channel is up plays it a one-second tone, so tests can
//! check that the samples arrive and sound like the tone.

use std::sync::{Arc, Mutex};

use ironrdp_rdpsnd::codec::{ima_adpcm_format, AudioEncoder};
use ironrdp_rdpsnd::pdu::{AudioFormat, WaveFormat};
use ironrdp_rdpsnd::server::{NegotiatedFormat, RdpsndError, RdpsndServerHandler};

/// Length of the tone, and of each wave block it is sent in.
const TONE_MS: u32 = 1000;
const BLOCK_MS: u32 = 100;

/// Offers the formats and remembers the one the client took.
#[derive(Debug)]
pub struct ToneSource {
    formats: Vec<AudioFormat>,
    chosen: Arc<Mutex<Option<AudioFormat>>>,
}

impl ToneSource {
    /// The source and where the chosen format appears once negotiated.
    pub fn new() -> (Self, Arc<Mutex<Option<AudioFormat>>>) {
        let pcm = AudioFormat {
            format: WaveFormat::PCM,
            n_channels: 2,
            n_samples_per_sec: 44_100,
            n_avg_bytes_per_sec: 44_100 * 4,
            n_block_align: 4,
            bits_per_sample: 16,
            data: None,
        };
        let chosen = Arc::default();
        let source = Self {
            // ADPCM first, as Windows prefers a compressed format.
            formats: vec![ima_adpcm_format(2, 22_050, 1024), pcm],
            chosen: Arc::clone(&chosen),
        };
        (source, chosen)
    }
}

impl RdpsndServerHandler for ToneSource {
    fn get_formats(&self) -> &[AudioFormat] {
        &self.formats
    }

    fn choose_format<'a>(
        &mut self,
        common: &'a [NegotiatedFormat],
    ) -> Option<&'a NegotiatedFormat> {
        common.first()
    }

    fn start(&mut self, format: &NegotiatedFormat) -> Result<(), Box<dyn RdpsndError>> {
        *self.chosen.lock().expect("not poisoned") = Some(format.format().clone());
        Ok(())
    }

    fn stop(&mut self) {}
}

/// A sine tone of `hz` at half scale, both channels, coded in `format` and
/// cut into wave blocks of [`BLOCK_MS`] (whole codec blocks each).
pub fn tone_blocks(hz: u32, format: &AudioFormat) -> anyhow::Result<Vec<Vec<u8>>> {
    let rate = format.n_samples_per_sec;
    let channels = usize::from(format.n_channels);
    let mut encoder =
        AudioEncoder::new(format).map_err(|e| anyhow::anyhow!("cannot code the tone: {e}"))?;
    let per_block = usize::try_from(rate * BLOCK_MS / 1000)?;
    // Whole codec blocks, so that every wave block decodes on its own.
    let per_block = per_block.next_multiple_of(encoder.frames_per_block().max(1));
    let frames = usize::try_from(rate * TONE_MS / 1000)?.next_multiple_of(per_block);
    let mut blocks = Vec::new();
    for start in (0..frames).step_by(per_block) {
        let pcm: Vec<i16> = (start..start + per_block)
            .flat_map(|n| {
                let t = n as f64 / f64::from(rate);
                let v = (t * f64::from(hz) * std::f64::consts::TAU).sin() * 16_384.0;
                std::iter::repeat_n(v as i16, channels)
            })
            .collect();
        let mut out = Vec::new();
        encoder.encode(&pcm, &mut out);
        blocks.push(out);
    }
    Ok(blocks)
}

/// "IMA ADPCM 22050 Hz 2 ch": a format in words, for the echo.
pub fn describe(format: &AudioFormat) -> String {
    let kind = match format.format {
        WaveFormat::PCM => "PCM".to_owned(),
        WaveFormat::DVI_ADPCM => "IMA ADPCM".to_owned(),
        other => format!("{other:?}"),
    };
    format!(
        "{kind} {} Hz {} ch",
        format.n_samples_per_sec, format.n_channels
    )
}
