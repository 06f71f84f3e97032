//! The graphics pipeline (MS-RDPEGFX, on ironrdp-egfx) with H.264 as its
//! 4:2:0 form only (AVC420, capability set 8.1), decoded by Cisco's
//! OpenH264. ironrdp-session composites what it decodes into the session's
//! picture, which reports it as any other update.
//!
//! Why AVC420 and not the newer sets: a server picks the most capable set
//! offered, and from 10.0 on that is AVC444, which costs many times more on
//! the wire (scrolling text on FreeRDP 3's shadow server: 7.3 Mbit/s
//! against 0.19). Why the pipeline at all: servers tuned for today's
//! clients send their least there — FreeRDP 3's shadow server drops an
//! unchanged frame only on its H.264 path, and sends the whole screen 16
//! times a second as bitmaps otherwise.

use ironrdp_egfx::client::{GraphicsPipelineClient, GraphicsPipelineHandler};
use ironrdp_egfx::decode::{H264Decoder, OpenH264Decoder};
use ironrdp_egfx::pdu::{CapabilitiesV81Flags, CapabilitiesV8Flags, CapabilitySet};

/// The pipeline for a connection's dynamic channels. Where OpenH264 cannot
/// start, the pipeline offers no H.264 (ironrdp-egfx then leaves out the
/// sets that need it) and the server sends other codecs.
pub fn pipeline() -> GraphicsPipelineClient {
    let decoder = match OpenH264Decoder::new() {
        Ok(decoder) => Some(Box::new(decoder) as Box<dyn H264Decoder>),
        Err(e) => {
            tracing::warn!("no H.264 decoder: {e}");
            None
        }
    };
    GraphicsPipelineClient::new(Box::new(Avc420), decoder)
}

/// Offers capability set 8.1 with AVC420, then 8 (no H.264).
struct Avc420;

impl GraphicsPipelineHandler for Avc420 {
    fn capabilities(&self) -> Vec<CapabilitySet> {
        vec![
            CapabilitySet::V8_1 {
                flags: CapabilitiesV81Flags::AVC420_ENABLED | CapabilitiesV81Flags::SMALL_CACHE,
            },
            CapabilitySet::V8 {
                flags: CapabilitiesV8Flags::SMALL_CACHE,
            },
        ]
    }
}
