//! The server side of RDP drive redirection (ironrdp-rdpdr's `RdpdrServer`),
//! so tests can see what a client shares: each announced drive is opened and
//! its top folder listed; names are echoed like input is.

use std::collections::{HashMap, VecDeque};

use ironrdp_core::impl_as_any;
use ironrdp_pdu::PduResult;
use ironrdp_rdpdr::pdu::efs::{
    ClientDriveLockControlResponse, ClientDriveNotifyChangeDirectoryResponse,
    ClientDriveQueryDirectoryResponse, ClientDriveQueryInformationResponse,
    ClientDriveQuerySecurityResponse, ClientDriveQueryVolumeInformationResponse,
    ClientDriveSetInformationResponse, ClientDriveSetSecurityResponse, CreateDisposition,
    CreateOptions, DesiredAccess, DeviceAnnounceHeader, DeviceCloseResponse, DeviceControlResponse,
    DeviceCreateResponse, DeviceFlushBuffersResponse, DeviceReadResponse, DeviceWriteResponse,
    FileInformationClass, FileInformationClassLevel, NtStatus,
};
use ironrdp_rdpdr::pdu::RdpdrPdu;
use ironrdp_rdpdr::server::{RdpdrServer, RdpdrServerBackend};
use ironrdp_svc::SvcMessage;
use tokio::sync::broadcast;

use crate::InputEcho;

/// What to ask the client next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Windows says "the user logged on" after the handshake; only then do
    /// clients announce drives.
    UserLoggedOn,
    OpenRoot {
        device: u32,
    },
    List {
        device: u32,
        file: u32,
        first: bool,
    },
    Close {
        device: u32,
        file: u32,
    },
}

#[derive(Debug)]
pub struct DriveObserver {
    echo: broadcast::Sender<InputEcho>,
    next: VecDeque<Next>,
    /// Device → the open root folder being listed.
    open: HashMap<u32, u32>,
}

impl_as_any!(DriveObserver);

impl DriveObserver {
    pub fn new(echo: broadcast::Sender<InputEcho>) -> Self {
        Self {
            echo,
            next: VecDeque::new(),
            open: HashMap::new(),
        }
    }

    fn listing_file(&self, device: u32) -> Option<u32> {
        self.open.get(&device).copied()
    }
}

/// Sends what the observer decided to ask since the last call.
pub fn follow_up(server: &mut RdpdrServer) -> PduResult<Vec<SvcMessage>> {
    let mut messages = Vec::new();
    loop {
        let next = server
            .downcast_backend_mut::<DriveObserver>()
            .and_then(|o| o.next.pop_front());
        let Some(next) = next else {
            return Ok(messages);
        };
        messages.extend(match next {
            Next::UserLoggedOn => vec![SvcMessage::from(RdpdrPdu::UserLoggedon)],
            Next::OpenRoot { device } => server.drive_create(
                device,
                "",
                DesiredAccess::FILE_READ_DATA_OR_FILE_LIST_DIRECTORY,
                CreateDisposition::FILE_OPEN,
                CreateOptions::FILE_DIRECTORY_FILE,
            )?,
            Next::List {
                device,
                file,
                first,
            } => server.drive_query_directory(
                device,
                file,
                FileInformationClassLevel::FILE_BOTH_DIRECTORY_INFORMATION,
                "\\*",
                first,
            )?,
            Next::Close { device, file } => server.drive_close(device, file)?,
        });
    }
}

impl RdpdrServerBackend for DriveObserver {
    fn on_device_announce(&mut self, devices: &[DeviceAnnounceHeader]) -> Vec<(u32, bool)> {
        devices
            .iter()
            .map(|d| {
                let _ = self.echo.send(InputEcho::Drive {
                    name: d.preferred_dos_name().to_owned(),
                });
                self.next.push_back(Next::OpenRoot {
                    device: d.device_id(),
                });
                (d.device_id(), true)
            })
            .collect()
    }

    fn on_device_remove(&mut self, _device_ids: &[u32]) {}

    fn on_client_name(&mut self, _computer_name: &str) {
        // The server's capability request and client-ID confirm go out with
        // this; the logon notice follows them.
        self.next.push_back(Next::UserLoggedOn);
    }

    fn on_create_complete(&mut self, response: &DeviceCreateResponse) -> PduResult<()> {
        if response.device_io_reply.io_status == NtStatus::SUCCESS {
            self.open
                .insert(response.device_io_reply.device_id, response.file_id);
            self.next.push_back(Next::List {
                device: response.device_io_reply.device_id,
                file: response.file_id,
                first: true,
            });
        }
        Ok(())
    }

    fn on_query_directory_complete(
        &mut self,
        response: &ClientDriveQueryDirectoryResponse,
    ) -> PduResult<()> {
        let device = response.device_io_reply.device_id;
        if response.device_io_reply.io_status != NtStatus::SUCCESS {
            // STATUS_NO_MORE_FILES (or an error): the listing is over.
            if let Some(file) = self.open.remove(&device) {
                self.next.push_back(Next::Close { device, file });
            }
            return Ok(());
        }
        if let Some(FileInformationClass::BothDirectory(entry)) = &response.buffer {
            if entry.file_name != "." && entry.file_name != ".." {
                let _ = self.echo.send(InputEcho::DriveFile {
                    name: entry.file_name.clone(),
                });
            }
        }
        // Ask for the next entry of the same listing; the file id is the
        // one the listing started with.
        if let Some(file) = self.listing_file(device) {
            self.next.push_back(Next::List {
                device,
                file,
                first: false,
            });
        }
        Ok(())
    }

    fn on_close_complete(&mut self, _: &DeviceCloseResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_read_complete(&mut self, _: &DeviceReadResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_write_complete(&mut self, _: &DeviceWriteResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_flush_buffers_complete(&mut self, _: &DeviceFlushBuffersResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_device_control_complete(&mut self, _: &DeviceControlResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_query_information_complete(
        &mut self,
        _: &ClientDriveQueryInformationResponse,
    ) -> PduResult<()> {
        Ok(())
    }
    fn on_set_information_complete(
        &mut self,
        _: &ClientDriveSetInformationResponse,
    ) -> PduResult<()> {
        Ok(())
    }
    fn on_notify_change_directory_complete(
        &mut self,
        _: &ClientDriveNotifyChangeDirectoryResponse,
    ) -> PduResult<()> {
        Ok(())
    }
    fn on_query_volume_information_complete(
        &mut self,
        _: &ClientDriveQueryVolumeInformationResponse,
    ) -> PduResult<()> {
        Ok(())
    }
    fn on_lock_control_complete(&mut self, _: &ClientDriveLockControlResponse) -> PduResult<()> {
        Ok(())
    }
    fn on_query_security_complete(
        &mut self,
        _: &ClientDriveQuerySecurityResponse,
    ) -> PduResult<()> {
        Ok(())
    }
    fn on_set_security_complete(&mut self, _: &ClientDriveSetSecurityResponse) -> PduResult<()> {
        Ok(())
    }
}
