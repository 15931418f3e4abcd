//! When a client's bytes arrived: when its `read` returned (the default,
//! what an application sees) or the kernel's receive timestamp of the
//! socket's data (`SO_TIMESTAMPNS`, `--arrival kernel`).
//!
//! The kernel stamps a segment when it reaches the client's socket, which
//! on loopback happens inside the server's `write`. A latency to that stamp
//! leaves out the load generator's own wake-up and queueing (tens of µs to
//! milliseconds on a busy machine), which is the client's delay, not the
//! server's: it is the figure to compare with the server's own
//! `tickwire_write_latency_seconds` (publish to the end of its write).
//! Linux only; a read the kernel did not stamp (timestamping is switched on
//! system-wide a moment after the first socket asks) falls back to the
//! clock and is counted.

use std::io;

use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;

/// How a read's arrival time is taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Arrival {
    /// When the read returned.
    #[default]
    Read,
    /// The kernel's receive timestamp (`SO_TIMESTAMPNS`).
    Kernel,
}

impl Arrival {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Kernel => "kernel",
        }
    }
}

/// Asks the kernel to stamp what `stream` receives.
#[cfg(target_os = "linux")]
pub fn enable_kernel_stamps(stream: &TcpStream) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let on: libc::c_int = 1;
    // SAFETY: a valid socket fd owned by `stream` for the call's duration,
    // and a pointer to a live c_int with its exact size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            (&raw const on).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
pub fn enable_kernel_stamps(_stream: &TcpStream) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--arrival kernel needs Linux (SO_TIMESTAMPNS)",
    ))
}

/// Reads into `buf`: the byte count and the kernel's receive timestamp of
/// the newest data read (Unix ns), if it gave one.
#[cfg(target_os = "linux")]
pub async fn read_stamped(
    sock: &OwnedReadHalf,
    buf: &mut [u8],
) -> io::Result<(usize, Option<i64>)> {
    use std::os::fd::AsRawFd;
    let stream: &TcpStream = sock.as_ref();
    loop {
        stream.readable().await?;
        match stream.try_io(tokio::io::Interest::READABLE, || {
            recv_stamped(stream.as_raw_fd(), buf)
        }) {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub async fn read_stamped(
    sock: &OwnedReadHalf,
    buf: &mut [u8],
) -> io::Result<(usize, Option<i64>)> {
    let _ = (sock, buf);
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "--arrival kernel needs Linux (SO_TIMESTAMPNS)",
    ))
}

/// One non-blocking `recvmsg` with room for an `SCM_TIMESTAMPNS` message.
#[cfg(target_os = "linux")]
fn recv_stamped(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<(usize, Option<i64>)> {
    // u64 elements: aligned for cmsghdr; 64 bytes hold CMSG_SPACE(timespec)
    let mut control = [0u64; 8];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: msghdr is plain data; all-zero is a valid empty value.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &raw mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` points at `iov` (over `buf`) and `control`, all live
    // and writable for the call; their lengths are their sizes.
    let n = unsafe { libc::recvmsg(fd, &raw mut msg, libc::MSG_DONTWAIT) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut stamp = None;
    // SAFETY: the CMSG_* walk stays inside `control` as the kernel filled
    // it (msg_controllen was updated by recvmsg); the timespec is read
    // unaligned from a message of the type that carries one.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_TIMESTAMPNS
            {
                let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                stamp = Some(ts.tv_sec * 1_000_000_000 + ts.tv_nsec);
            }
            cmsg = libc::CMSG_NXTHDR(&raw const msg, cmsg);
        }
    }
    Ok((n as usize, stamp))
}
