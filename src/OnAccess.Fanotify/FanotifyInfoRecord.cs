using System.Text;

namespace OnAccess.Fanotify;

/// <summary>One info record that followed an event's metadata (<c>struct fanotify_event_info_header</c> and its body).</summary>
/// <param name="Type">The kernel's <c>info_type</c> (1 fid, 2 dfid+name, 3 dfid, 4 pidfd, 5 error, ...).</param>
/// <param name="Data">The record's bytes after the 4-byte header.</param>
public sealed record FanotifyInfoRecord(int Type, ReadOnlyMemory<byte> Data)
{
    /// <summary>For a directory-fid-and-name record (type 2): the entry name after the file handle; otherwise <see langword="null"/>.</summary>
    public string? Name
    {
        get
        {
            // fsid (8 bytes), then struct file_handle { __u32 handle_bytes; int handle_type; unsigned char f_handle[]; }, then the name.
            if (Type != Interop.FanotifyConstants.FAN_EVENT_INFO_TYPE_DFID_NAME || Data.Length < 16)
            {
                return null;
            }

            var span = Data.Span;
            var handleBytes = BitConverter.ToUInt32(span[8..]);
            var start = 16 + (long)handleBytes;
            if (start > span.Length)
            {
                return null;
            }

            var name = span[(int)start..];
            var end = name.IndexOf((byte)0);
            return Encoding.UTF8.GetString(end < 0 ? name : name[..end]);
        }
    }
}
