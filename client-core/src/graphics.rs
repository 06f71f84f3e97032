//! The graphics pipeline (MS-RDPEGFX, on ironrdp-egfx) with H.264 as its
//! 4:2:0 form only (AVC420, capability set 8.1), decoded by Cisco's
//! OpenH264. The session composites what it decodes into its picture
//! (see [`composite`]) and reports it as any other update.
//!
//! Why AVC420 and not the newer sets: a server picks the most capable set
//! offered, and from 10.0 on that is AVC444, which costs many times more on
//! the wire (scrolling text on FreeRDP 3's shadow server: 7.3 Mbit/s
//! against 0.19). Why the pipeline at all: servers tuned for today's
//! clients send their least there — FreeRDP 3's shadow server drops an
//! unchanged frame only on its H.264 path, and sends the whole screen 16
//! times a second as bitmaps otherwise.

use std::collections::HashMap;

use ironrdp_core::{decode_cursor, impl_as_any, Decode as _, ReadCursor};
use ironrdp_dvc::{DvcClientProcessor, DvcMessage, DvcProcessor};
use ironrdp_egfx::client::{GraphicsPipelineClient, GraphicsPipelineHandler};
use ironrdp_egfx::decode::{H264Decoder, OpenH264Decoder};
use ironrdp_egfx::pdu::{
    Avc420BitmapStream, CapabilitiesV81Flags, CapabilitiesV8Flags, CapabilitySet, Codec1Type,
    GfxPdu,
};
use ironrdp_graphics::zgfx;
use ironrdp_pdu::geometry::{ExclusiveRectangle, InclusiveRectangle};
use ironrdp_pdu::{pdu_other_err, PduResult};
use ironrdp_session::image::DecodedImage;
use ironrdp_session::{ActiveStage, SessionResult};

/// The most pixels the commands of one message may paint, each counted as
/// often as it is painted: 32 times a 3840×2160 screen. A server draws a
/// changed screen with one or a few commands per region; a hostile one can
/// make a small message paint without end (thousands of fills or H.264
/// regions each covering a whole surface), holding the session while it
/// runs. Such a message ends the session instead.
pub const MAX_PIXELS_PER_MESSAGE: u64 = 4 * 8192 * 8192;

/// The pipeline for a connection's dynamic channels (made anew each time
/// the server opens the channel, see `rdp::dynamic_channels`). Where
/// OpenH264 cannot start, the pipeline offers no H.264 (ironrdp-egfx then
/// leaves out the sets that need it) and the server sends other codecs.
pub fn pipeline() -> Graphics {
    let decoder = match OpenH264Decoder::new() {
        Ok(decoder) => Some(Box::new(decoder) as Box<dyn H264Decoder>),
        Err(e) => {
            tracing::warn!("no H.264 decoder: {e}");
            None
        }
    };
    Graphics {
        pipeline: GraphicsPipelineClient::new(Box::new(Avc420), decoder),
        work: Work::default(),
    }
}

/// ironrdp-egfx's pipeline, with each message's drawing counted before it
/// runs (see [`MAX_PIXELS_PER_MESSAGE`]). Under a type of its own, the
/// session composites it (see [`composite`]): ironrdp-session composites a
/// [`GraphicsPipelineClient`] it finds among the channels by itself.
pub struct Graphics {
    pipeline: GraphicsPipelineClient,
    work: Work,
}

impl_as_any!(Graphics);

impl DvcProcessor for Graphics {
    fn channel_name(&self) -> &str {
        self.pipeline.channel_name()
    }

    fn start(&mut self, channel_id: u32) -> PduResult<Vec<DvcMessage>> {
        self.pipeline.start(channel_id)
    }

    fn process(&mut self, channel_id: u32, payload: &[u8]) -> PduResult<Vec<DvcMessage>> {
        let pixels = self.work.count(payload);
        if pixels > MAX_PIXELS_PER_MESSAGE {
            return Err(pdu_other_err!(
                "the RDP server sent graphics that would take too long to draw"
            ));
        }
        self.pipeline.process(channel_id, payload)
    }

    fn close(&mut self, channel_id: u32) {
        self.pipeline.close(channel_id)
    }
}

impl DvcClientProcessor for Graphics {}

/// Composites what the pipeline decoded since the last call into `image`:
/// whether the picture was reset (cleared, perhaps to another size), and
/// the rectangle around what was drawn. Nothing while the server has not
/// opened the channel.
pub fn composite(
    stage: &mut ActiveStage,
    image: &mut DecodedImage,
) -> SessionResult<(bool, Option<InclusiveRectangle>)> {
    let Some(mut gfx) = stage.get_dvc_mut::<Graphics>() else {
        return Ok((false, None));
    };
    let pipeline = &mut gfx.processor_mut().pipeline;
    let composited = ironrdp_session::composite_graphics_pipeline(pipeline, image)?;
    Ok((composited.reset, composited.region))
}

/// Reads each message as the pipeline will (its own copy of the ZGFX
/// history) and counts the pixels its commands paint, knowing the surfaces
/// and cached tiles they paint from.
#[derive(Default)]
struct Work {
    history: zgfx::Decompressor,
    read: Vec<u8>,
    surfaces: HashMap<u16, (u16, u16)>,
    cached: HashMap<u16, u64>,
}

impl Work {
    /// The pixels `payload` paints. A message that cannot be read counts
    /// nothing: the pipeline refuses it by itself.
    fn count(&mut self, payload: &[u8]) -> u64 {
        self.read.clear();
        if self.history.decompress(payload, &mut self.read).is_err() {
            return 0;
        }
        let read = std::mem::take(&mut self.read);
        let mut cursor = ReadCursor::new(&read);
        let mut pixels = 0u64;
        while !cursor.is_empty() {
            let Ok(pdu) = decode_cursor::<GfxPdu>(&mut cursor) else {
                break;
            };
            pixels = pixels.saturating_add(self.paints(&pdu));
        }
        self.read = read;
        pixels
    }

    fn paints(&mut self, pdu: &GfxPdu) -> u64 {
        let area = |surfaces: &HashMap<u16, (u16, u16)>, surface: u16, r: &ExclusiveRectangle| {
            let Some(&(width, height)) = surfaces.get(&surface) else {
                return 0;
            };
            let across = r.right.min(width).saturating_sub(r.left);
            let down = r.bottom.min(height).saturating_sub(r.top);
            u64::from(across) * u64::from(down)
        };
        let surfaces = &self.surfaces;
        match pdu {
            GfxPdu::ResetGraphics(_) => {
                self.surfaces.clear();
                0
            }
            GfxPdu::CreateSurface(p) => {
                self.surfaces.insert(p.surface_id, (p.width, p.height));
                0
            }
            GfxPdu::DeleteSurface(p) => {
                self.surfaces.remove(&p.surface_id);
                0
            }
            GfxPdu::SolidFill(p) => p
                .rectangles
                .iter()
                .map(|r| area(surfaces, p.surface_id, r))
                .sum(),
            GfxPdu::SurfaceToSurface(p) => {
                let tile = area(surfaces, p.source_surface_id, &p.source_rectangle);
                tile.saturating_mul(p.destination_points.len() as u64)
            }
            GfxPdu::SurfaceToCache(p) => {
                let tile = area(surfaces, p.surface_id, &p.source_rectangle);
                self.cached.insert(p.cache_slot, tile);
                tile
            }
            GfxPdu::CacheToSurface(p) => {
                let tile = self.cached.get(&p.cache_slot).copied().unwrap_or(0);
                tile.saturating_mul(p.destination_points.len() as u64)
            }
            GfxPdu::EvictCacheEntry(p) => {
                self.cached.remove(&p.cache_slot);
                0
            }
            // Each H.264 region is copied from the decoded frame on its own.
            GfxPdu::WireToSurface1(p) if p.codec_id == Codec1Type::Avc420 => {
                let mut cursor = ReadCursor::new(&p.bitmap_data);
                let Ok(stream) = Avc420BitmapStream::decode(&mut cursor) else {
                    return 0;
                };
                let frame = area(surfaces, p.surface_id, &p.destination_rectangle);
                stream
                    .rectangles
                    .iter()
                    .map(|r| area(surfaces, p.surface_id, r))
                    .fold(frame, u64::saturating_add)
            }
            _ => 0,
        }
    }
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

#[cfg(test)]
mod tests {
    use std::any::TypeId;

    use ironrdp_core::encode_vec;
    use ironrdp_dvc::pdu::{
        CapabilitiesRequestPdu, CapsVersion, ClosePdu, CreateRequestPdu, DataPdu, DrdynvcDataPdu,
        DrdynvcServerPdu,
    };
    use ironrdp_dvc::DrdynvcClient;
    use ironrdp_egfx::pdu::{
        CapabilitiesConfirmPdu, Color, CreateSurfacePdu, EndFramePdu, MapSurfaceToOutputPdu,
        PixelFormat as GfxPixelFormat, QuantQuality, ResetGraphicsPdu, SolidFillPdu, StartFramePdu,
        Timestamp, WireToSurface1Pdu,
    };
    use ironrdp_graphics::image_processing::PixelFormat;
    use ironrdp_session::ActiveStageBuilder;
    use ironrdp_svc::{StaticChannelSet, SvcProcessor as _};

    use super::*;

    const GFX: u32 = 7;

    /// A session with the connection's dynamic channels, as after logon.
    fn stage() -> ActiveStage {
        let mut channels = StaticChannelSet::new();
        channels.insert(crate::rdp::dynamic_channels());
        channels.attach_channel_id(TypeId::of::<DrdynvcClient>(), 1004);
        let mut stage = ActiveStageBuilder {
            static_channels: channels,
            user_channel_id: 1001,
            io_channel_id: 1003,
            message_channel_id: None,
            share_id: 1,
            compression_type: None,
            enable_server_pointer: false,
            pointer_software_rendering: false,
        }
        .build();
        let caps = CapabilitiesRequestPdu::new(CapsVersion::V1, None);
        server(&mut stage, DrdynvcServerPdu::Capabilities(caps));
        stage
    }

    /// What the server says on the dynamic channels; how many messages the
    /// client answers with.
    fn server(stage: &mut ActiveStage, pdu: DrdynvcServerPdu) -> usize {
        try_server(stage, pdu).unwrap()
    }

    fn try_server(stage: &mut ActiveStage, pdu: DrdynvcServerPdu) -> PduResult<usize> {
        let drdynvc = stage.get_svc_processor_mut::<DrdynvcClient>().unwrap();
        Ok(drdynvc.process(&encode_vec(&pdu).unwrap())?.len())
    }

    /// Graphics commands in one message (ZGFX-wrapped, uncompressed).
    fn gfx(stage: &mut ActiveStage, pdus: &[GfxPdu]) {
        try_gfx(stage, pdus).unwrap();
    }

    fn try_gfx(stage: &mut ActiveStage, pdus: &[GfxPdu]) -> PduResult<usize> {
        let mut bytes = Vec::new();
        for pdu in pdus {
            bytes.extend(encode_vec(pdu).unwrap());
        }
        let wrapped = zgfx::wrap_uncompressed(&bytes);
        let data = DrdynvcDataPdu::Data(DataPdu::new(GFX, wrapped));
        try_server(stage, DrdynvcServerPdu::Data(data))
    }

    /// The server opens the pipeline and confirms capability set 8.
    fn open(stage: &mut ActiveStage) {
        let create = CreateRequestPdu::new(GFX, ironrdp_egfx::CHANNEL_NAME.to_owned());
        // The create answer and the client's capabilities.
        assert_eq!(server(stage, DrdynvcServerPdu::Create(create)), 2);
        let v8 = CapabilitySet::V8 {
            flags: CapabilitiesV8Flags::SMALL_CACHE,
        };
        gfx(
            stage,
            &[GfxPdu::CapabilitiesConfirm(
                CapabilitiesConfirmPdu::from_typed(&v8),
            )],
        );
    }

    /// A reset to `width`×`height` with one surface over it, and one frame
    /// filling `rect` of it with red.
    fn reset_and_fill(stage: &mut ActiveStage, width: u16, height: u16, rect: ExclusiveRectangle) {
        gfx(
            stage,
            &[
                GfxPdu::ResetGraphics(ResetGraphicsPdu {
                    width: width.into(),
                    height: height.into(),
                    monitors: Vec::new(),
                }),
                GfxPdu::CreateSurface(CreateSurfacePdu {
                    surface_id: 1,
                    width,
                    height,
                    pixel_format: GfxPixelFormat::XRgb,
                }),
                GfxPdu::MapSurfaceToOutput(MapSurfaceToOutputPdu {
                    surface_id: 1,
                    output_origin_x: 0,
                    output_origin_y: 0,
                }),
            ],
        );
        fill(stage, 1, rect);
    }

    /// One frame filling `rect` with red.
    fn fill(stage: &mut ActiveStage, frame_id: u32, rect: ExclusiveRectangle) {
        let timestamp = Timestamp {
            milliseconds: 0,
            seconds: 0,
            minutes: 0,
            hours: 0,
        };
        let red = Color {
            b: 0,
            g: 0,
            r: 255,
            xa: 255,
        };
        gfx(
            stage,
            &[
                GfxPdu::StartFrame(StartFramePdu {
                    timestamp,
                    frame_id,
                }),
                GfxPdu::SolidFill(SolidFillPdu {
                    surface_id: 1,
                    fill_pixel: red,
                    rectangles: vec![rect],
                }),
                GfxPdu::EndFrame(EndFramePdu { frame_id }),
            ],
        );
    }

    /// What the session does after each message.
    fn drawn(
        stage: &mut ActiveStage,
        image: &mut DecodedImage,
    ) -> (bool, Option<InclusiveRectangle>) {
        composite(stage, image).unwrap()
    }

    fn inclusive(left: u16, top: u16, right: u16, bottom: u16) -> Option<InclusiveRectangle> {
        Some(InclusiveRectangle {
            left,
            top,
            right,
            bottom,
        })
    }

    fn rect(left: u16, top: u16, right: u16, bottom: u16) -> ExclusiveRectangle {
        ExclusiveRectangle {
            left,
            top,
            right,
            bottom,
        }
    }

    fn pixel(image: &DecodedImage, x: usize, y: usize) -> [u8; 3] {
        let at = (y * usize::from(image.width()) + x) * 4;
        image.data()[at..at + 3].try_into().unwrap()
    }

    #[test]
    fn a_reset_to_another_size_resizes_the_picture() {
        let mut stage = stage();
        let mut image = DecodedImage::new(PixelFormat::RgbA32, 64, 32);
        assert_eq!(drawn(&mut stage, &mut image), (false, None));
        open(&mut stage);
        reset_and_fill(&mut stage, 100, 50, rect(90, 40, 100, 50));
        // The surface mapped to the output counts as drawn.
        assert_eq!(
            drawn(&mut stage, &mut image),
            (true, inclusive(0, 0, 99, 49))
        );
        assert_eq!((image.width(), image.height()), (100, 50));
        assert_eq!(pixel(&image, 99, 49), [255, 0, 0]);
        assert_eq!(pixel(&image, 10, 10), [0, 0, 0]);
        // Another frame: only what it drew.
        fill(&mut stage, 2, rect(0, 0, 10, 5));
        assert_eq!(
            drawn(&mut stage, &mut image),
            (false, inclusive(0, 0, 9, 4))
        );
        assert_eq!(drawn(&mut stage, &mut image), (false, None));
    }

    /// A message painting more than [`MAX_PIXELS_PER_MESSAGE`] ends the
    /// session before any of it is drawn; the same commands in a few
    /// messages are drawn.
    #[test]
    fn a_message_that_would_paint_without_end_is_refused() {
        let mut stage = stage();
        let mut image = DecodedImage::new(PixelFormat::RgbA32, 64, 32);
        open(&mut stage);
        reset_and_fill(&mut stage, 4096, 4096, rect(0, 0, 1, 1));
        drawn(&mut stage, &mut image);
        let whole = rect(0, 0, 4096, 4096);
        let screens = (MAX_PIXELS_PER_MESSAGE / (4096 * 4096)) as usize;
        let fills = |count: usize| {
            GfxPdu::SolidFill(SolidFillPdu {
                surface_id: 1,
                fill_pixel: Color {
                    b: 0,
                    g: 0,
                    r: 0,
                    xa: 255,
                },
                rectangles: vec![whole.clone(); count],
            })
        };
        let refused = try_gfx(&mut stage, &[fills(screens + 1)]).unwrap_err();
        assert!(
            refused.to_string().contains("too long to draw"),
            "{refused}"
        );

        // H.264 regions, each copied from the decoded frame.
        let mut stage = self::stage();
        open(&mut stage);
        reset_and_fill(&mut stage, 4096, 4096, rect(0, 0, 1, 1));
        let regions = screens + 1;
        let stream = Avc420BitmapStream {
            rectangles: vec![whole.clone(); regions],
            quant_qual_vals: vec![
                QuantQuality {
                    quantization_parameter: 22,
                    progressive: false,
                    quality: 100,
                };
                regions
            ],
            data: &[],
        };
        let avc = GfxPdu::WireToSurface1(WireToSurface1Pdu {
            surface_id: 1,
            codec_id: Codec1Type::Avc420,
            pixel_format: GfxPixelFormat::XRgb,
            destination_rectangle: whole,
            bitmap_data: encode_vec(&stream).unwrap(),
        });
        let refused = try_gfx(&mut stage, &[avc]).unwrap_err();
        assert!(
            refused.to_string().contains("too long to draw"),
            "{refused}"
        );

        // Small fills in one message are counted by what they cover.
        let mut stage = self::stage();
        open(&mut stage);
        reset_and_fill(&mut stage, 64, 32, rect(0, 0, 1, 1));
        let small = GfxPdu::SolidFill(SolidFillPdu {
            surface_id: 1,
            fill_pixel: Color {
                b: 0,
                g: 0,
                r: 255,
                xa: 255,
            },
            rectangles: vec![rect(0, 0, 64, 32); 10_000],
        });
        try_gfx(&mut stage, &[small]).unwrap();
    }

    #[test]
    fn a_pipeline_the_server_closes_and_opens_again_works() {
        let mut stage = stage();
        let mut image = DecodedImage::new(PixelFormat::RgbA32, 64, 32);
        open(&mut stage);
        reset_and_fill(&mut stage, 64, 32, rect(0, 0, 8, 8));
        assert!(drawn(&mut stage, &mut image).0);
        server(&mut stage, DrdynvcServerPdu::Close(ClosePdu::new(GFX)));
        assert_eq!(drawn(&mut stage, &mut image), (false, None));
        // A processor registered once would refuse this second opening.
        open(&mut stage);
        reset_and_fill(&mut stage, 64, 32, rect(32, 16, 48, 32));
        assert!(drawn(&mut stage, &mut image).0);
        assert_eq!(pixel(&image, 40, 20), [255, 0, 0]);
    }
}
