//! `--sound-out`: the remote PC's sound decoded and kept, then written as a
//! WAV file (for checking what arrives; the app plays it instead).

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex};

use client_core::sound::{decodable_formats, Player, WaveDecoder};
use ironrdp_rdpsnd::client::RdpsndClientHandler;
use ironrdp_rdpsnd::pdu::{AudioFormat, PitchPdu, VolumePdu};

/// At most this many samples are kept (two minutes of 48 kHz stereo),
/// whatever format the server picked.
const MAX_SAMPLES: usize = 120 * 48_000 * 2;

/// The decoded sound: interleaved 16-bit samples and their layout.
#[derive(Debug, Default)]
pub struct Recorded {
    pub samples: Vec<i16>,
    pub channels: u16,
    pub rate: u32,
}

impl Recorded {
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }

    pub fn write_wav(&self, path: &Path) -> anyhow::Result<()> {
        let spec = hound::WavSpec {
            channels: self.channels.max(1),
            sample_rate: self.rate.max(1),
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut wav = hound::WavWriter::create(path, spec)?;
        for sample in &self.samples {
            wav.write_sample(*sample)?;
        }
        wav.finalize()?;
        Ok(())
    }
}

/// Takes what a Windows client would (PCM and ADPCM), decodes it with
/// ironrdp-rdpsnd's codecs and keeps it.
#[derive(Debug)]
pub struct Recorder {
    formats: Vec<AudioFormat>,
    decoder: WaveDecoder,
    into: Arc<Mutex<Recorded>>,
}

impl Recorder {
    pub fn player() -> (Player, Arc<Mutex<Recorded>>) {
        let into = Arc::<Mutex<Recorded>>::default();
        let recorder = Self {
            formats: decodable_formats(),
            decoder: WaveDecoder::default(),
            into: Arc::clone(&into),
        };
        (Box::new(recorder), into)
    }
}

impl RdpsndClientHandler for Recorder {
    fn get_formats(&self) -> &[AudioFormat] {
        &self.formats
    }

    /// Every format the server offers that decodes here, in its order.
    fn choose_formats(&self, server_formats: &[AudioFormat]) -> Vec<AudioFormat> {
        client_core::sound::playable(server_formats)
    }

    fn wave(&mut self, format: &AudioFormat, _ts: u32, data: Cow<'_, [u8]>) {
        let mut into = self.into.lock().expect("not poisoned");
        // A server that never stops cannot fill this computer's memory.
        if into.samples.len() >= MAX_SAMPLES {
            return;
        }
        into.channels = format.n_channels;
        into.rate = format.n_samples_per_sec;
        if let Err(e) = self.decoder.decode(format, &data, &mut into.samples) {
            eprintln!("the remote PC's sound did not decode ({e})");
        }
    }

    fn set_volume(&mut self, _volume: VolumePdu) {}

    fn set_pitch(&mut self, _pitch: PitchPdu) {}

    fn close(&mut self) {}
}
