//! Sound from the remote PC (the RDP `rdpsnd` channel, ironrdp-rdpsnd): the
//! platform supplies a player (`native::speaker` on Windows and Linux,
//! through cpal), and [`Speaker`] puts the session bar's mute switch in
//! front of it. The switch outlives reconnects: the driver keeps it.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ironrdp_rdpsnd::client::RdpsndClientHandler;
use ironrdp_rdpsnd::codec::{ima_adpcm_format, AudioDecoder};
use ironrdp_rdpsnd::pdu::{AudioFormat, AudioFormatFlags, PitchPdu, VolumePdu, WaveFormat};

/// A player for the remote PC's sound.
pub type Player = Box<dyn RdpsndClientHandler>;

/// Makes a player for each connection (a reconnect needs a new one);
/// `Err` says why this computer cannot play sound (no output device).
pub type SoundSetup = Box<dyn FnMut() -> Result<Player, String> + Send>;

/// The formats of `offered` a player here can take, in the server's order:
/// those ironrdp-rdpsnd decodes, within what a sound device plays (1–8
/// channels, 8–192 kHz), so that a server cannot size buffers at will.
pub fn playable(offered: &[AudioFormat]) -> Vec<AudioFormat> {
    offered
        .iter()
        .filter(|f| (1..=8).contains(&f.n_channels))
        .filter(|f| (8_000..=192_000).contains(&f.n_samples_per_sec))
        .filter(|f| AudioDecoder::supports(f))
        .cloned()
        .collect()
}

/// What a player that decodes with ironrdp-rdpsnd's codecs offers (Windows
/// picks among them by bandwidth): PCM at 44.1 and 22.05 kHz, IMA ADPCM.
pub fn decodable_formats() -> Vec<AudioFormat> {
    let pcm = |channels: u16, rate: u32| AudioFormat {
        format: WaveFormat::PCM,
        n_channels: channels,
        n_samples_per_sec: rate,
        n_avg_bytes_per_sec: rate * u32::from(channels) * 2,
        n_block_align: channels * 2,
        bits_per_sample: 16,
        data: None,
    };
    vec![
        pcm(2, 44_100),
        pcm(2, 22_050),
        ima_adpcm_format(2, 22_050, 1024),
    ]
}

/// Wave blocks to interleaved 16-bit samples, with a decoder for the
/// format in use (made again when the server changes it).
#[derive(Debug, Default)]
pub struct WaveDecoder {
    current: Option<(AudioFormat, AudioDecoder)>,
}

impl WaveDecoder {
    /// Appends the samples of `data`, coded in `format`, to `out`.
    pub fn decode(
        &mut self,
        format: &AudioFormat,
        data: &[u8],
        out: &mut Vec<i16>,
    ) -> Result<(), String> {
        let decoder = match &mut self.current {
            Some((current, decoder)) if current == format => decoder,
            slot => {
                let decoder = AudioDecoder::new(format).map_err(|e| e.to_string())?;
                &mut slot.insert((format.clone(), decoder)).1
            }
        };
        decoder.decode(data, out).map_err(|e| e.to_string())
    }
}

/// A player behind a mute switch: while muted, the remote PC's sound is
/// taken (and confirmed, so the remote PC's programs keep running) but not
/// played.
#[derive(Debug)]
pub struct Speaker {
    player: Player,
    muted: Arc<AtomicBool>,
}

impl Speaker {
    pub fn new(player: Player, muted: Arc<AtomicBool>) -> Self {
        Self { player, muted }
    }
}

impl RdpsndClientHandler for Speaker {
    fn get_flags(&self) -> AudioFormatFlags {
        self.player.get_flags()
    }

    fn get_formats(&self) -> &[AudioFormat] {
        self.player.get_formats()
    }

    fn choose_formats(&self, server_formats: &[AudioFormat]) -> Vec<AudioFormat> {
        self.player.choose_formats(server_formats)
    }

    fn wave(&mut self, format: &AudioFormat, ts: u32, data: Cow<'_, [u8]>) {
        if !self.muted.load(Ordering::Relaxed) {
            self.player.wave(format, ts, data);
        }
    }

    fn playback_latency(&self) -> std::time::Duration {
        self.player.playback_latency()
    }

    fn set_volume(&mut self, volume: VolumePdu) {
        self.player.set_volume(volume);
    }

    fn set_pitch(&mut self, pitch: PitchPdu) {
        self.player.set_pitch(pitch);
    }

    fn close(&mut self) {
        self.player.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[derive(Debug)]
    struct Counting(Arc<AtomicUsize>);

    impl RdpsndClientHandler for Counting {
        fn get_formats(&self) -> &[AudioFormat] {
            &[]
        }
        fn wave(&mut self, _format: &AudioFormat, _ts: u32, _data: Cow<'_, [u8]>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
        fn set_volume(&mut self, _volume: VolumePdu) {}
        fn set_pitch(&mut self, _pitch: PitchPdu) {}
        fn close(&mut self) {}
    }

    #[test]
    fn the_mute_switch_holds_back_the_sound_while_on() {
        let played = Arc::new(AtomicUsize::new(0));
        let muted = Arc::new(AtomicBool::new(false));
        let mut speaker = Speaker::new(Box::new(Counting(played.clone())), muted.clone());
        let format = ironrdp_rdpsnd::codec::ima_adpcm_format(2, 22_050, 1024);
        let mut wave = || speaker.wave(&format, 0, Cow::Borrowed(&[0u8; 16]));
        wave();
        muted.store(true, Ordering::Relaxed);
        wave();
        wave();
        muted.store(false, Ordering::Relaxed);
        wave();
        assert_eq!(played.load(Ordering::Relaxed), 2);
    }
}
