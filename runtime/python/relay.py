# vcd-faas dependency install, inside its network-less container: carries the package
# manager's proxy connections (127.0.0.1:3128) to the platform's relay socket, which lets
# through only the package sources. Runs the install command once it listens; exits with it.
import socket
import subprocess
import sys
import threading


def pump(source, sink):
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        try:
            sink.shutdown(socket.SHUT_WR)
        except OSError:
            pass


def carry(client):
    relay = socket.socket(socket.AF_UNIX)
    try:
        relay.connect("/run/relay/sock")
    except OSError:
        client.close()
        return
    back = threading.Thread(target=pump, args=(relay, client), daemon=True)
    back.start()
    pump(client, relay)
    back.join()
    client.close()
    relay.close()


def accept(server):
    while True:
        client, _ = server.accept()
        threading.Thread(target=carry, args=(client,), daemon=True).start()


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", 3128))
server.listen(64)
threading.Thread(target=accept, args=(server,), daemon=True).start()
sys.exit(subprocess.call(["sh", "-c", sys.argv[-1]]))
