//! The browser client: the same UI as the desktop app (the `ui` crate) on
//! eframe's web runner, reaching hosts through the relay that served the
//! page, over a WebSocket. Built with `cargo xtask web`.

#[cfg(target_arch = "wasm32")]
pub mod platform;
#[cfg(target_arch = "wasm32")]
pub mod socket;
#[cfg(target_arch = "wasm32")]
mod sound;

#[cfg(target_arch = "wasm32")]
mod app {
    use wasm_bindgen::prelude::*;

    use crate::platform::WebPlatform;

    struct WebApp {
        app: ui::ThinApp,
        title: String,
    }

    impl eframe::App for WebApp {
        fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
            self.app.show(ui);
            // The tab's title names the computer and the step waiting for
            // the user, as the desktop app's window title does.
            if self.app.title() != self.title {
                self.title = self.app.title().to_owned();
                if let Some(document) = document() {
                    document.set_title(&self.title);
                }
            }
        }
    }

    fn document() -> Option<web_sys::Document> {
        web_sys::window().and_then(|w| w.document())
    }

    fn element(id: &str) -> Option<web_sys::Element> {
        document().and_then(|d| d.get_element_by_id(id))
    }

    /// Starts the app on the page's `<canvas id="thin">`. `ui_font` is the
    /// UI's font subset, which the page's loader fetches while the module
    /// downloads (it is a file of its own so the two arrive at once).
    #[wasm_bindgen]
    pub async fn run(ui_font: Vec<u8>) {
        let canvas = element("thin").and_then(|e| e.dyn_into::<web_sys::HtmlCanvasElement>().ok());
        let Some(canvas) = canvas else {
            web_sys::console::error_1(&"no <canvas id=\"thin\"> on the page".into());
            return;
        };
        let platform = WebPlatform::new(ui_font);
        // A browser does not tell the keyboard's layout; its language is
        // the nearest sign (Japanese pages, Japanese keyboards).
        client_core::rdp::Keyboard::from_name(&ui::Platform::locale(&platform)).use_for_sessions();
        let runner = eframe::WebRunner::new();
        let started = runner
            .start(
                canvas,
                eframe::WebOptions::default(),
                Box::new(move |_cc| {
                    let app = ui::ThinApp::new(Box::new(platform));
                    Ok(Box::new(WebApp {
                        app,
                        title: String::new(),
                    }))
                }),
            )
            .await;
        match (started, element("loading")) {
            (Ok(()), Some(loading)) => loading.remove(),
            (Err(e), loading) => {
                web_sys::console::error_1(&e);
                if let Some(loading) = loading {
                    loading.set_text_content(Some(
                        "このブラウザーでは画面を表示できませんでした (WebGL が使えません)。 \
                         / This browser cannot show the client (WebGL is not available).",
                    ));
                }
            }
            (Ok(()), None) => {}
        }
    }
}
