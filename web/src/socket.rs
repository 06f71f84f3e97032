//! The browser's WebSocket as a byte stream for client-core: binary
//! messages in and out. The browser runs everything on one thread, so the
//! JavaScript objects are kept in a `SendWrapper` to satisfy the `Send`
//! bounds the shared connection code has for native builds.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use send_wrapper::SendWrapper;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use transport::Unread;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast as _;
use web_sys::{BinaryType, CloseEvent, MessageEvent, WebSocket};

/// What the socket's callbacks leave for the reader.
#[derive(Default)]
struct Inbox {
    open: bool,
    messages: VecDeque<Vec<u8>>,
    closed: Option<String>,
    waker: Option<Waker>,
}

impl Inbox {
    fn wake(&mut self) {
        if let Some(waker) = self.waker.take() {
            waker.wake();
        }
    }
}

struct Inner {
    socket: WebSocket,
    inbox: Rc<RefCell<Inbox>>,
    /// Unread part of the current message.
    unread: Unread,
    _callbacks: [Closure<dyn FnMut(JsEvent)>; 4],
}

type JsEvent = wasm_bindgen::JsValue;

pub struct WsStream {
    inner: SendWrapper<Inner>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let _ = self.socket.close();
    }
}

impl WsStream {
    /// Opens `url` and waits until the connection is up.
    pub async fn connect(url: &str) -> Result<Self, String> {
        let stream = Self::open(url)?;
        Opened(&stream).await?;
        Ok(stream)
    }

    /// Starts opening `url`; everything that is not `Send` stays inside the
    /// wrapper, so the future awaiting the opening can be `Send`.
    fn open(url: &str) -> Result<Self, String> {
        let socket = WebSocket::new(url).map_err(|e| format!("{e:?}"))?;
        socket.set_binary_type(BinaryType::Arraybuffer);
        let inbox = Rc::new(RefCell::new(Inbox::default()));
        let on_open = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(JsEvent)>::new(move |_| {
                let mut inbox = inbox.borrow_mut();
                inbox.open = true;
                inbox.wake();
            })
        };
        let on_message = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(JsEvent)>::new(move |event: JsEvent| {
                let Ok(event) = event.dyn_into::<MessageEvent>() else {
                    return;
                };
                if let Ok(buffer) = event.data().dyn_into::<js_sys::ArrayBuffer>() {
                    let mut inbox = inbox.borrow_mut();
                    inbox
                        .messages
                        .push_back(js_sys::Uint8Array::new(&buffer).to_vec());
                    inbox.wake();
                }
            })
        };
        let on_close = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(JsEvent)>::new(move |event: JsEvent| {
                let reason = event
                    .dyn_into::<CloseEvent>()
                    .map(|e| format!("closed ({}) {}", e.code(), e.reason()))
                    .unwrap_or_else(|_| "closed".into());
                let mut inbox = inbox.borrow_mut();
                inbox.closed.get_or_insert(reason);
                inbox.wake();
            })
        };
        let on_error = {
            let inbox = inbox.clone();
            Closure::<dyn FnMut(JsEvent)>::new(move |_event: JsEvent| {
                let mut inbox = inbox.borrow_mut();
                inbox
                    .closed
                    .get_or_insert_with(|| "the relay cannot be reached".into());
                inbox.wake();
            })
        };
        socket.set_onopen(Some(on_open.as_ref().unchecked_ref()));
        socket.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        socket.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        socket.set_onerror(Some(on_error.as_ref().unchecked_ref()));
        Ok(Self {
            inner: SendWrapper::new(Inner {
                socket,
                inbox,
                unread: Unread::default(),
                _callbacks: [on_open, on_message, on_close, on_error],
            }),
        })
    }
}

/// Resolves when the socket opens or fails to.
struct Opened<'a>(&'a WsStream);

impl std::future::Future for Opened<'_> {
    type Output = Result<(), String>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inbox = self.0.inner.inbox.borrow_mut();
        if let Some(reason) = &inbox.closed {
            return Poll::Ready(Err(reason.clone()));
        }
        if inbox.open {
            return Poll::Ready(Ok(()));
        }
        inbox.waker = Some(cx.waker().clone());
        Poll::Pending
    }
}

impl AsyncRead for WsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let inner = &mut *self.inner;
        loop {
            if inner.unread.read_into(buf) {
                return Poll::Ready(Ok(()));
            }
            let mut inbox = inner.inbox.borrow_mut();
            if let Some(message) = inbox.messages.pop_front() {
                drop(inbox);
                inner.unread.set(message);
                continue;
            }
            if inbox.closed.is_some() {
                return Poll::Ready(Ok(()));
            }
            inbox.waker = Some(cx.waker().clone());
            return Poll::Pending;
        }
    }
}

impl AsyncWrite for WsStream {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let inner = &*self.inner;
        if let Some(reason) = &inner.inbox.borrow().closed {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                reason.clone(),
            )));
        }
        // The browser queues what is sent; frames stay within one message.
        let n = buf.len().min(64 * 1024);
        inner
            .socket
            .send_with_u8_array(&buf[..n])
            .map_err(|e| io::Error::other(format!("{e:?}")))?;
        Poll::Ready(Ok(n))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let _ = self.inner.socket.close();
        Poll::Ready(Ok(()))
    }
}
