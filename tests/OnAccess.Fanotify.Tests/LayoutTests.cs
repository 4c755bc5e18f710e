using System.Reflection;
using System.Runtime.CompilerServices;
using System.Text;
using OnAccess.Tests;

namespace OnAccess.Fanotify.Tests;

/// <summary>
/// Compiles a C program against the system headers with gcc and compares every struct size, field offset and
/// constant this binding declares with what C sees.
/// </summary>
public sealed class LayoutTests
{
    private static readonly (FanotifyEvents Value, string Native)[] PublicEvents =
    [
        (FanotifyEvents.Access, "FAN_ACCESS"), (FanotifyEvents.Modify, "FAN_MODIFY"), (FanotifyEvents.Attrib, "FAN_ATTRIB"),
        (FanotifyEvents.CloseWrite, "FAN_CLOSE_WRITE"), (FanotifyEvents.CloseNoWrite, "FAN_CLOSE_NOWRITE"), (FanotifyEvents.Open, "FAN_OPEN"),
        (FanotifyEvents.MovedFrom, "FAN_MOVED_FROM"), (FanotifyEvents.MovedTo, "FAN_MOVED_TO"), (FanotifyEvents.Create, "FAN_CREATE"),
        (FanotifyEvents.Delete, "FAN_DELETE"), (FanotifyEvents.DeleteSelf, "FAN_DELETE_SELF"), (FanotifyEvents.MoveSelf, "FAN_MOVE_SELF"),
        (FanotifyEvents.OpenExec, "FAN_OPEN_EXEC"), (FanotifyEvents.QueueOverflow, "FAN_Q_OVERFLOW"), (FanotifyEvents.FileSystemError, "FAN_FS_ERROR"),
        (FanotifyEvents.OpenPermission, "FAN_OPEN_PERM"), (FanotifyEvents.AccessPermission, "FAN_ACCESS_PERM"),
        (FanotifyEvents.OpenExecPermission, "FAN_OPEN_EXEC_PERM"), (FanotifyEvents.OnDirectory, "FAN_ONDIR"),
    ];

    [Fact]
    public async Task Structs_and_constants_match_the_C_headers()
    {
        var expected = new List<(string Name, string Value)>
        {
            ("sizeof(struct fanotify_event_metadata)", Unsafe.SizeOf<Interop.FanotifyEventMetadata>().ToString()),
            ("sizeof(struct fanotify_event_info_header)", Unsafe.SizeOf<Interop.FanotifyEventInfoHeader>().ToString()),
            ("sizeof(struct fanotify_response)", Unsafe.SizeOf<Interop.FanotifyResponse>().ToString()),
            ("sizeof(struct statx)", Unsafe.SizeOf<Interop.Libc.Statx>().ToString()),
            ("sizeof(struct pollfd)", Unsafe.SizeOf<Interop.Libc.PollFd>().ToString()),
            ("offsetof(struct fanotify_event_metadata, event_len)", Offset<Interop.FanotifyEventMetadata>("EventLen")),
            ("offsetof(struct fanotify_event_metadata, vers)", Offset<Interop.FanotifyEventMetadata>("Vers")),
            ("offsetof(struct fanotify_event_metadata, metadata_len)", Offset<Interop.FanotifyEventMetadata>("MetadataLen")),
            ("offsetof(struct fanotify_event_metadata, mask)", Offset<Interop.FanotifyEventMetadata>("Mask")),
            ("offsetof(struct fanotify_event_metadata, fd)", Offset<Interop.FanotifyEventMetadata>("Fd")),
            ("offsetof(struct fanotify_event_metadata, pid)", Offset<Interop.FanotifyEventMetadata>("Pid")),
            ("offsetof(struct fanotify_response, response)", Offset<Interop.FanotifyResponse>("Response")),
            ("offsetof(struct fanotify_event_info_header, info_type)", Offset<Interop.FanotifyEventInfoHeader>("InfoType")),
            ("offsetof(struct fanotify_event_info_header, pad)", Offset<Interop.FanotifyEventInfoHeader>("Pad")),
            ("offsetof(struct fanotify_event_info_header, len)", Offset<Interop.FanotifyEventInfoHeader>("Len")),
            ("offsetof(struct statx, stx_attributes)", Offset<Interop.Libc.Statx>("Attributes")),
            ("offsetof(struct statx, stx_attributes_mask)", Offset<Interop.Libc.Statx>("AttributesMask")),
            ("sizeof(struct f_owner_ex)", Unsafe.SizeOf<Interop.Libc.OwnerEx>().ToString()),
            ("offsetof(struct f_owner_ex, pid)", Offset<Interop.Libc.OwnerEx>("Pid")),
            ("offsetof(struct file_handle, f_handle)", Offset<Interop.Libc.FileHandle>("Bytes")),
            ("offsetof(struct file_handle, handle_type)", Offset<Interop.Libc.FileHandle>("HandleType")),
            ("sizeof(sigset_t)", Unsafe.SizeOf<Interop.Libc.SigSet>().ToString()),
            ("sizeof(struct signalfd_siginfo)", Interop.Libc.SignalFdInfoSize.ToString()),
            ("offsetof(struct signalfd_siginfo, ssi_fd)", Interop.Libc.SignalFdInfoFdOffset.ToString()),
            ("offsetof(struct dirent64, d_name)", Interop.Libc.DirentNameOffset.ToString()),
            ("O_DIRECTORY", Interop.Libc.O_DIRECTORY.ToString()),
            ("O_NOFOLLOW", Interop.Libc.O_NOFOLLOW.ToString()),
            ("(unsigned)_IOWR(0xFF, 11, char[64])", Interop.Libc.PidfdGetInfo.ToString()),
            ("offsetof(struct statx, stx_uid)", Offset<Interop.Libc.Statx>("Uid")),
            ("offsetof(struct statx, stx_mode)", Offset<Interop.Libc.Statx>("Mode")),
            ("offsetof(struct statx, stx_ino)", Offset<Interop.Libc.Statx>("Ino")),
            ("offsetof(struct statx, stx_size)", Offset<Interop.Libc.Statx>("Size")),
            ("offsetof(struct statx, stx_ctime)", Offset<Interop.Libc.Statx>("CTime")),
            ("offsetof(struct statx, stx_mtime)", Offset<Interop.Libc.Statx>("MTime")),
            ("offsetof(struct statx, stx_dev_major)", Offset<Interop.Libc.Statx>("DevMajor")),
            ("offsetof(struct statx, stx_dev_minor)", Offset<Interop.Libc.Statx>("DevMinor")),
            ("offsetof(struct statx, stx_mnt_id)", Offset<Interop.Libc.Statx>("MountId")),
            ("sizeof(struct open_how)", Unsafe.SizeOf<Interop.Libc.OpenHow>().ToString()),
            ("offsetof(struct open_how, resolve)", Offset<Interop.Libc.OpenHow>("Resolve")),
        };
        expected.AddRange(Constants("Interop+FanotifyConstants"));
        expected.AddRange(Constants("Interop+Errno"));
        expected.AddRange(Constants("Interop+Libc"));
        expected.AddRange(PublicEvents.Select(e => (e.Native, ((ulong)e.Value).ToString())));

        var actual = await CompileAndRunAsync(expected.Select(e => e.Name).Distinct());
        foreach (var (name, value) in expected)
        {
            Assert.True(actual.TryGetValue(name, out var c), $"the C program printed nothing for {name}");
            Assert.True(c == value, $"{name}: C says {c}, C# says {value}");
        }
    }

    private static string Offset<T>(string field) => System.Runtime.InteropServices.Marshal.OffsetOf<T>(field).ToString();

    private static IEnumerable<(string, string)> Constants(string typeName)
    {
        var type = typeof(FanotifyGroup).Assembly.GetType(typeName, throwOnError: true)!;
        // Native names only (FAN_OPEN, EINTR, ...); helpers such as AllPermissionEvents have no C twin.
        foreach (var f in type.GetFields(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public).Where(f => f.IsLiteral && f.Name == f.Name.ToUpperInvariant()))
        {
            var value = f.GetRawConstantValue()!;
            yield return (f.Name, value is int i ? i.ToString() : Convert.ToUInt64(value).ToString());
        }
    }

    private static async Task<Dictionary<string, string>> CompileAndRunAsync(IEnumerable<string> names)
    {
        using var tree = KernelTestSupport.CreateTempTree("onaccess-layout-");
        var c = new StringBuilder("""
            #define _GNU_SOURCE
            #include <sys/fanotify.h>
            #include <sys/stat.h>
            #include <sys/signalfd.h>
            #include <signal.h>
            #include <dirent.h>
            #include <sys/resource.h>
            #include <linux/stat.h>
            #include <sys/eventfd.h>
            #include <poll.h>
            #include <fcntl.h>
            #include <errno.h>
            #include <stddef.h>
            #include <stdio.h>
            #include <sys/ioctl.h>
            #include <linux/openat2.h>
            int main(void) {

            """);
        foreach (var name in names)
        {
            // Expressions, and names glibc defines in an enum rather than as a macro, are printed unconditionally.
            var isExpression = name.Contains('(') || name is "F_OWNER_TID";
            if (!isExpression)
            {
                c.Append("#ifdef ").Append(name).Append('\n');
            }

            c.Append("  if ((long long)(").Append(name).Append(") < 0) printf(\"%s %lld\\n\", \"").Append(name).Append("\", (long long)(").Append(name).Append("));\n");
            c.Append("  else printf(\"%s %llu\\n\", \"").Append(name).Append("\", (unsigned long long)(").Append(name).Append("));\n");
            if (!isExpression)
            {
                c.Append("#endif\n");
            }
        }

        c.Append("  return 0;\n}\n");
        var source = tree.File("layout.c", c.ToString());
        var binary = tree.Combine("layout");
        var compile = await KernelTestSupport.RunAsync("gcc", "-o", binary, source);
        Assert.True(compile.ExitCode == 0, "gcc failed: " + compile.StdErr);
        var run = await KernelTestSupport.RunAsync(binary);
        return run.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .ToDictionary(l => l[..l.LastIndexOf(' ')], l => l[(l.LastIndexOf(' ') + 1)..]);
    }
}
