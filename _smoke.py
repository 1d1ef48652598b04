import sys; sys.path.insert(0, "tests")
from conftest import make_face_folder
import convolutional_autoencoder as ca, time
f = make_face_folder("/tmp/smoke_faces", persons=10, per_person=2, size=64)
t=time.time()
rc = ca.main(["--data", str(f), "--arch", "C3,8,2C3,8,1M2", "--epochs", "3", "--batch-size", "4", "--eval-every", "3", "--out", "/tmp/smoke_save"])
print("rc", rc, time.time()-t)
