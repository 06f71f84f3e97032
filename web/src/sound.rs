//! The office PC's sound in the browser: wave blocks decoded with
//! ironrdp-rdpsnd's codecs and queued back to back on a Web Audio
//! `AudioContext`. The browser lets a page make sound only after the person
//! interacted with it (typing the one-time password counts); a context that
//! starts suspended is resumed at each block.

use std::borrow::Cow;

use client_core::sound::{decodable_formats, Player, WaveDecoder};
use ironrdp_rdpsnd::client::RdpsndClientHandler;
use ironrdp_rdpsnd::pdu::{AudioFormat, PitchPdu, VolumePdu};
use send_wrapper::SendWrapper;
use web_sys::{AudioContext, AudioContextState};

/// Blocks start this far ahead of the context's clock (seconds), to ride
/// out the network's jitter…
const LEAD: f64 = 0.08;
/// …and blocks beyond this backlog are dropped, so that sound never lags far
/// behind the picture after a stall and a server cannot queue without end
/// (servers send ahead of time in bursts: two seconds leave room for them).
const MAX_AHEAD: f64 = 2.0;

#[derive(Debug)]
pub struct WebSpeaker {
    formats: Vec<AudioFormat>,
    context: SendWrapper<AudioContext>,
    decoder: WaveDecoder,
    /// Context time at which the next block starts.
    next_start: f64,
    /// Seconds of sound queued so far (logged once it reaches one second).
    queued: f64,
    said_playing: bool,
}

impl WebSpeaker {
    /// A player on a new `AudioContext`, or why the browser has none.
    pub fn player() -> Result<Player, String> {
        let context =
            AudioContext::new().map_err(|e| format!("this browser cannot play sound ({e:?})"))?;
        Ok(Box::new(Self {
            formats: decodable_formats(),
            context: SendWrapper::new(context),
            decoder: WaveDecoder::default(),
            next_start: 0.0,
            queued: 0.0,
            said_playing: false,
        }))
    }

    fn play(&mut self, format: &AudioFormat, data: &[u8]) -> Result<(), String> {
        let mut samples = Vec::new();
        self.decoder.decode(format, data, &mut samples)?;
        let channels = usize::from(format.n_channels.max(1));
        let frames = samples.len() / channels;
        if frames == 0 {
            return Ok(());
        }
        let context = &*self.context;
        if context.state() == AudioContextState::Suspended {
            let _ = context.resume();
        }
        let rate = format.n_samples_per_sec as f32;
        let buffer = context
            .create_buffer(channels as u32, frames as u32, rate)
            .map_err(|e| format!("{e:?}"))?;
        let mut plane = vec![0f32; frames];
        for channel in 0..channels {
            for (frame, out) in plane.iter_mut().enumerate() {
                *out = f32::from(samples[frame * channels + channel]) / 32_768.0;
            }
            buffer
                .copy_to_channel(&plane, channel as i32)
                .map_err(|e| format!("{e:?}"))?;
        }
        let source = context
            .create_buffer_source()
            .map_err(|e| format!("{e:?}"))?;
        source.set_buffer(Some(&buffer));
        source
            .connect_with_audio_node(&context.destination())
            .map_err(|e| format!("{e:?}"))?;
        let now = context.current_time();
        if self.next_start > now + MAX_AHEAD {
            // Too much queued already: this block is dropped.
            return Ok(());
        }
        if self.next_start < now + LEAD / 2.0 {
            self.next_start = now + LEAD;
        }
        source
            .start_with_when(self.next_start)
            .map_err(|e| format!("{e:?}"))?;
        let seconds = frames as f64 / f64::from(format.n_samples_per_sec);
        self.next_start += seconds;
        self.queued += seconds;
        if !self.said_playing && self.queued >= 0.9 {
            self.said_playing = true;
            let line = format!(
                "sound: playing {} Hz {} ch",
                format.n_samples_per_sec, format.n_channels
            );
            web_sys::console::info_1(&line.into());
        }
        Ok(())
    }
}

impl RdpsndClientHandler for WebSpeaker {
    fn get_formats(&self) -> &[AudioFormat] {
        &self.formats
    }

    /// Every format the server offers that decodes here, in its order.
    fn choose_formats(&self, server_formats: &[AudioFormat]) -> Vec<AudioFormat> {
        client_core::sound::playable(server_formats)
    }

    fn wave(&mut self, format: &AudioFormat, _ts: u32, data: Cow<'_, [u8]>) {
        if let Err(e) = self.play(format, &data) {
            web_sys::console::warn_1(&format!("sound: a block was not played ({e})").into());
        }
    }

    fn set_volume(&mut self, _volume: VolumePdu) {}

    fn set_pitch(&mut self, _pitch: PitchPdu) {}

    fn close(&mut self) {
        self.decoder = WaveDecoder::default();
    }
}

impl Drop for WebSpeaker {
    fn drop(&mut self) {
        let _ = self.context.close();
    }
}
